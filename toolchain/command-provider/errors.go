package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tailLines is how much command output a failure message carries.
const tailLines = 30

// exitStatusError is returned by the runners when a command exits non-zero.
type exitStatusError struct{ Status int }

func (e *exitStatusError) Error() string { return fmt.Sprintf("exit status %d", e.Status) }

// commandFailure builds the error reported to the engine for a failed run.
// It carries the last lines of stderr (stdout when stderr is empty), with
// secret values redacted, and never the command text itself.
func commandFailure(ctx context.Context, op string, timeout time.Duration, runErr error,
	stdout, stderr string, red redactor) error {
	var exit *exitStatusError
	var what string
	switch {
	case errors.As(runErr, &exit) && exit.Status >= 0:
		what = fmt.Sprintf("%s command failed with exit status %d", op, exit.Status)
	case errors.As(runErr, &exit):
		what = fmt.Sprintf("%s command was killed or lost without an exit status", op)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0:
		what = fmt.Sprintf("%s command did not finish within %s (%s)", op, timeout, red.apply(runErr.Error()))
	case errors.Is(ctx.Err(), context.Canceled):
		what = fmt.Sprintf("%s command was canceled", op)
	default:
		what = fmt.Sprintf("%s command failed: %s", op, red.apply(runErr.Error()))
	}

	stream, text := "stderr", stderr
	if strings.TrimSpace(text) == "" {
		stream, text = "stdout", stdout
	}
	if strings.TrimSpace(text) == "" {
		return errors.New(what)
	}
	return fmt.Errorf("%s; last lines of %s:\n%s", what, stream, red.apply(lastLines(text, tailLines)))
}
