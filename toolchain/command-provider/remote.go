package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// runRemote runs command on the host described by a.Connection over an SSH
// exec session. Environment variables are sent with Setenv, which sshd only
// honours for names listed in its AcceptEnv; refusals are reported through
// warn (for the user's own variables) and otherwise ignored, as upstream.
func runRemote(ctx context.Context, a *commandArgs, command string, env map[string]string,
	stdout, stderr io.Writer, warn func(string), onRetry func(int, error)) error {
	client, err := dialWithRetry(ctx, a.Connection, onRetry)
	if err != nil {
		return err
	}
	defer client.Close()

	session, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("opening SSH session: %w", err)
	}
	defer session.Close()

	for k, v := range env {
		if err := session.Setenv(k, v); err != nil && !strings.HasPrefix(k, "PULUMI_COMMAND_") {
			warn(fmt.Sprintf("Unable to set %q: the SSH server must accept it via AcceptEnv; "+
				"alternatively pass it inline in the command", k))
		}
	}
	if a.Stdin != "" {
		session.Stdin = strings.NewReader(a.Stdin)
	}
	session.Stdout, session.Stderr = stdout, stderr

	if err := session.Start(command); err != nil {
		return fmt.Errorf("starting remote command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()

	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		_ = session.Close()
		_ = client.Close()
		<-done
		return ctx.Err()
	}

	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &exit):
		return &exitStatusError{Status: exit.ExitStatus()}
	case errors.As(err, &missing):
		return &exitStatusError{Status: -1}
	}
	return err
}
