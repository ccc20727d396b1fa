package main

import (
	"bytes"
	"sort"
	"strings"
	"sync"
)

// lineWriter forwards every complete line written to it to emit; Flush
// emits a trailing partial line.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	emit    func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSuffix(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		w.emit(line)
	}
	return len(p), nil
}

func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emit(string(w.partial))
		w.partial = nil
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// trimOutput drops one trailing newline, as upstream does for stdout/stderr.
func trimOutput(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// lastLines returns at most n trailing lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// minRedactLen avoids redacting very short secrets (e.g. "1"), which would
// mangle unrelated output while protecting nothing. Lines of a multi-line
// secret (a PEM key, a secret script) are redacted on their own only when
// at least minRedactLineLen long, so that "done" or "fi" stay readable.
const (
	minRedactLen     = 4
	minRedactLineLen = 20
)

// redactor replaces secret values with "[secret]".
type redactor struct{ r *strings.Replacer }

func newRedactor(secrets []string) redactor {
	var uniq []string
	seen := map[string]bool{}
	add := func(s string, minLen int) {
		s = strings.TrimSpace(s)
		if len(s) >= minLen && !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	for _, s := range secrets {
		add(s, minRedactLen)
		if strings.Contains(s, "\n") {
			for _, line := range strings.Split(s, "\n") {
				add(line, minRedactLineLen)
			}
		}
	}
	if len(uniq) == 0 {
		return redactor{}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(uniq, func(i, j int) bool { return len(uniq[i]) > len(uniq[j]) })
	pairs := make([]string, 0, 2*len(uniq))
	for _, s := range uniq {
		pairs = append(pairs, s, "[secret]")
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) apply(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
