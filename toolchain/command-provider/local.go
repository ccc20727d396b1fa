package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// pipeGrace bounds how long a canceled command's output pipes may stay open
// (held by background grandchildren) before Wait gives up on them.
const pipeGrace = 5 * time.Second

// runLocal runs command through the interpreter on this machine. The command
// runs in its own process group so cancellation kills its children too.
func runLocal(ctx context.Context, a *commandArgs, command string, env map[string]string,
	stdout, stderr io.Writer) error {
	argv := append(append([]string{}, a.Interpreter[1:]...), command)
	cmd := exec.CommandContext(ctx, a.Interpreter[0], argv...)
	cmd.Dir = a.Dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if a.Stdin != "" {
		cmd.Stdin = strings.NewReader(a.Stdin)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = pipeGrace

	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		return &exitStatusError{Status: exit.ExitCode()}
	}
	return err
}
