package testservers

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	*testing.T
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Skipf(format string, args ...any) {
	f.T.Errorf("a missing server must fail the test, not skip it: Skipf(%q)", format)
	runtime.Goexit()
}

// fatalOf runs fn with a recording TB and returns the Fatalf message.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestMissingBinaryFailsLoudly(t *testing.T) {
	for env, start := range map[string]func(testing.TB){
		"POSTWISE_MAILPIT":   func(tb testing.TB) { StartMailpit(tb, MailpitOptions{}) },
		"POSTWISE_SMTP_SINK": func(tb testing.TB) { StartSMTPSink(tb) },
		"POSTWISE_TOXIPROXY": func(tb testing.TB) { StartToxiproxy(tb) },
		"POSTWISE_JAEGER":    func(tb testing.TB) { StartJaeger(tb) },
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "/nonexistent/server-binary")
			msg := fatalOf(t, start)
			if !strings.Contains(msg, env) || !strings.Contains(msg, "scripts/test") {
				t.Fatalf("Fatalf message %q should name %s and say to run scripts/test", msg, env)
			}
		})
	}
}

func TestChaosFlag(t *testing.T) {
	for _, tc := range []struct {
		c    Chaos
		want string
	}{
		{Chaos{}, ""},
		{Chaos{Sender: ChaosTrigger{ErrorCode: 451, Probability: 30}, Recipient: ChaosTrigger{Probability: 30}},
			"Sender:451:30,Recipient:451:30"},
		{Chaos{Authentication: ChaosTrigger{Probability: 100}}, "Authentication:535:100"},
	} {
		if got := tc.c.flag(); got != tc.want {
			t.Errorf("%+v.flag() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestFreePortsAndListening(t *testing.T) {
	ports := freePorts(t, 3)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v", ports)
		}
		seen[p] = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if yes, ok := listening(port); ok && !yes {
		t.Fatalf("listening(%d) = false for an open listener", port)
	}
	l.Close()
	if yes, ok := listening(port); ok && yes {
		t.Fatalf("listening(%d) = true after close", port)
	}
}

func TestLogBufferKeepsTail(t *testing.T) {
	var b logBuffer
	chunk := strings.Repeat("x", 1<<20) + "\n"
	for range 6 {
		b.Write([]byte(chunk))
	}
	b.Write([]byte("the end\n"))
	s := b.String()
	if !strings.HasSuffix(s, "the end\n") || !strings.HasPrefix(s, "[... ") || len(s) > maxLog+100 {
		t.Fatalf("len %d, prefix %q, suffix %q", len(s), s[:20], s[len(s)-10:])
	}
}
