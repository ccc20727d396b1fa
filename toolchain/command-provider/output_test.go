package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{emit: func(l string) { lines = append(lines, l) }}
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\r\nthree"))
	w.Flush()
	if got := strings.Join(lines, "|"); got != "one|two|three" {
		t.Fatalf("got %q", got)
	}
}

func TestTrimOutput(t *testing.T) {
	for in, want := range map[string]string{"a\n": "a", "a\n\n": "a\n", "a": "a", "a\r\n": "a", "": ""} {
		if got := trimOutput(in); got != want {
			t.Errorf("trimOutput(%q)=%q, want %q", in, got, want)
		}
	}
}

func TestLastLines(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	got := lastLines(b.String(), 30)
	if !strings.HasPrefix(got, "line 21\n") || !strings.HasSuffix(got, "line 50") {
		t.Fatalf("got %q", got)
	}
	if lastLines("x", 30) != "x" {
		t.Fatal("short input changed")
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{"hunter2-long", "abc", "hunter2", "-----BEGIN KEY-----\nAAAAsecretlineAAAAsecretline\n",
		"for x in a b; do\n  echo $x\ndone"})
	got := r.apply("pw=hunter2-long alt=hunter2 abc key AAAAsecretlineAAAAsecretline done")
	want := "pw=[secret] alt=[secret] abc key [secret] done"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if (redactor{}).apply("x") != "x" {
		t.Fatal("empty redactor changed input")
	}
}
