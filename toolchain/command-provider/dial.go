package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Back-off between dial attempts.
const (
	dialBackoffStart = time.Second
	dialBackoffMax   = 5 * time.Second
)

// sshClient is a connected client plus the proxy client it tunnels through.
type sshClient struct {
	*ssh.Client
	proxy *ssh.Client
}

func (c *sshClient) Close() error {
	err := c.Client.Close()
	if c.proxy != nil {
		_ = c.proxy.Close()
	}
	return err
}

// dialWithRetry connects to c (through its proxy, if any), retrying with
// back-off until it succeeds, c.DialErrorLimit attempts failed (-1: no
// limit) or ctx is done. onRetry is told about each failed attempt.
func dialWithRetry(ctx context.Context, c *connection, onRetry func(attempt int, err error)) (*sshClient, error) {
	backoff := dialBackoffStart
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, c)
		if err == nil {
			return client, nil
		}
		if c.DialErrorLimit >= 0 && attempt >= c.DialErrorLimit {
			return nil, fmt.Errorf("could not connect to %s after %d attempt(s): %w", c.address(), attempt, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("could not connect to %s before the deadline (%d attempt(s)): %w",
				c.address(), attempt, err)
		}
		onRetry(attempt, err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("could not connect to %s before the deadline (%d attempt(s)): %w",
				c.address(), attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*3/2, dialBackoffMax)
	}
}

// dialOnce makes a single connection attempt, bounded by c.PerDialTimeout.
func dialOnce(ctx context.Context, c *connection) (*sshClient, error) {
	if c.Proxy == nil {
		client, err := dialDirect(ctx, c)
		if err != nil {
			return nil, err
		}
		return &sshClient{Client: client}, nil
	}
	proxy, err := dialDirect(ctx, c.Proxy)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", c.Proxy.address(), err)
	}
	conn, err := proxy.DialContext(ctx, "tcp", c.address())
	if err != nil {
		_ = proxy.Close()
		return nil, err
	}
	client, err := handshake(conn, c)
	if err != nil {
		_ = proxy.Close()
		return nil, err
	}
	return &sshClient{Client: client, proxy: proxy}, nil
}

func dialDirect(ctx context.Context, c *connection) (*ssh.Client, error) {
	timeout := time.Duration(c.PerDialTimeout) * time.Second
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.address())
	if err != nil {
		return nil, err
	}
	return handshake(conn, c)
}

// handshake runs the SSH handshake over conn within c.PerDialTimeout.
func handshake(conn net.Conn, c *connection) (*ssh.Client, error) {
	cfg, release, err := clientConfig(c)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	defer release()
	_ = conn.SetDeadline(time.Now().Add(time.Duration(c.PerDialTimeout) * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.address(), cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// clientConfig builds the SSH configuration for c; release frees the agent
// connection (if any) once the handshake is over.
func clientConfig(c *connection) (cfg *ssh.ClientConfig, release func(), err error) {
	cfg = &ssh.ClientConfig{
		User:            c.User,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // upstream default: no host key pinning
		Timeout:         time.Duration(c.PerDialTimeout) * time.Second,
	}
	if c.HostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("hostKey: %w", err)
		}
		cfg.HostKeyCallback = ssh.FixedHostKey(key)
	}
	cfg.Auth, release, err = authMethods(c)
	if err != nil {
		return nil, nil, err
	}
	return cfg, release, nil
}

func authMethods(c *connection) (methods []ssh.AuthMethod, release func(), err error) {
	release = func() {}
	if c.PrivateKey != "" {
		var signer ssh.Signer
		if c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			// Never include the key material in the error.
			return nil, nil, errors.New("privateKey: could not parse the private key")
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		password := c.Password
		methods = append(methods, ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	if c.AgentSocketPath != "" {
		conn, err := net.Dial("unix", c.AgentSocketPath)
		if err != nil {
			return nil, nil, fmt.Errorf("agentSocketPath: %w", err)
		}
		release = func() { _ = conn.Close() }
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return methods, release, nil
}
