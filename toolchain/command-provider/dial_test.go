package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// closedPort returns a local TCP port with nothing listening on it.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestDialGivesUpAfterErrorLimit(t *testing.T) {
	c := &connection{Host: "127.0.0.1", Port: closedPort(t), User: "root", DialErrorLimit: 2, PerDialTimeout: 1}
	retries := 0
	start := time.Now()
	_, err := dialWithRetry(context.Background(), c, func(int, error) { retries++ })
	if err == nil || !strings.Contains(err.Error(), "after 2 attempt(s)") {
		t.Fatalf("got %v", err)
	}
	if retries != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("retries=%d elapsed=%s", retries, time.Since(start))
	}
}

func TestDialUnlimitedStopsAtDeadline(t *testing.T) {
	c := &connection{Host: "127.0.0.1", Port: closedPort(t), User: "root", DialErrorLimit: -1, PerDialTimeout: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := dialWithRetry(ctx, c, func(int, error) {})
	if err == nil || !strings.Contains(err.Error(), "before the deadline") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func TestBadPrivateKeyErrorHidesKey(t *testing.T) {
	_, _, err := clientConfig(&connection{PrivateKey: "not-a-key-SECRETBITS", PerDialTimeout: 1})
	if err == nil || strings.Contains(err.Error(), "SECRETBITS") {
		t.Fatalf("got %v", err)
	}
}
