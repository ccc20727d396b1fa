package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Environment variables carrying the previous run's output.
const (
	envPrevStdout = "PULUMI_COMMAND_STDOUT"
	envPrevStderr = "PULUMI_COMMAND_STDERR"
)

// maxPrevOutputEnv keeps PULUMI_COMMAND_* below Linux's 128 KiB limit on
// one environment string; a larger value would make exec fail with E2BIG
// and so block the update or delete.
const maxPrevOutputEnv = 100 << 10

// previousOutput is the stdout/stderr recorded by the last create/update.
type previousOutput struct{ Stdout, Stderr string }

func previousOutputOf(state resource.PropertyMap) *previousOutput {
	get := func(k resource.PropertyKey) string {
		v, _ := unwrap(state[k])
		if v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	return &previousOutput{Stdout: get(keyStdout), Stderr: get(keyStderr)}
}

// operationContext derives the context of one create/update/delete: it ends
// when the request ends, when Cancel is called, or after timeoutSeconds
// (the resource's customTimeouts; 0 means no bound).
func (p *commandProvider) operationContext(ctx context.Context, timeoutSeconds float64) (
	context.Context, time.Duration, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unwatch := context.AfterFunc(p.stopped, cancel)
	timeout := time.Duration(timeoutSeconds * float64(time.Second))
	if timeout <= 0 {
		return ctx, 0, func() { unwatch(); cancel() }
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	return ctx, timeout, func() { cancelTimeout(); unwatch(); cancel() }
}

// run executes command for the resource urn (locally, or over SSH when a
// has a connection), streams its output to the engine log as a.Logging
// asks, and returns its trimmed stdout and stderr.
func (p *commandProvider) run(ctx context.Context, urn resource.URN, op string, a *commandArgs,
	command string, prev *previousOutput, timeoutSeconds float64) (string, string, error) {
	opCtx, timeout, cancel := p.operationContext(ctx, timeoutSeconds)
	defer cancel()

	env := maps.Clone(a.Environment)
	if env == nil {
		env = map[string]string{}
	}
	if a.AddPreviousOutputInEnv && prev != nil {
		for k, v := range map[string]string{envPrevStdout: prev.Stdout, envPrevStderr: prev.Stderr} {
			if len(v) > maxPrevOutputEnv {
				_ = p.log.Log(ctx, diag.Warning, urn, fmt.Sprintf(
					"%s not set: the previous output (%d bytes) is too large for an environment variable", k, len(v)))
				continue
			}
			env[k] = v
		}
	}

	red := newRedactor(a.Secrets)
	logTo := func(enabled bool) *lineWriter {
		return &lineWriter{emit: func(line string) {
			if enabled {
				_ = p.log.Log(ctx, diag.Info, urn, red.apply(line))
			}
		}}
	}
	var outBuf, errBuf syncBuffer
	outLog := logTo(a.Logging == logStdout || a.Logging == logStdoutAndStderr)
	errLog := logTo(a.Logging == logStderr || a.Logging == logStdoutAndStderr)
	stdout := io.MultiWriter(&outBuf, outLog)
	stderr := io.MultiWriter(&errBuf, errLog)

	var err error
	if a.Connection == nil {
		err = runLocal(opCtx, a, command, env, stdout, stderr)
	} else {
		warn := func(msg string) { _ = p.log.Log(ctx, diag.Warning, urn, msg) }
		onRetry := func(attempt int, dialErr error) {
			_ = p.log.LogStatus(ctx, diag.Info, urn, red.apply(fmt.Sprintf(
				"waiting for %s (dial attempt %d failed: %v)", a.Connection.address(), attempt, dialErr)))
		}
		err = runRemote(opCtx, a, command, env, stdout, stderr, warn, onRetry)
	}
	outLog.Flush()
	errLog.Flush()

	if err != nil {
		return "", "", commandFailure(opCtx, op, timeout, err, outBuf.String(), errBuf.String(), red)
	}
	return trimOutput(outBuf.String()), trimOutput(errBuf.String()), nil
}
