package sendertest

import (
	"io"
	"net"
	"testing"
)

// FuzzSession feeds arbitrary client input to a session: whatever a client
// sends, the server must neither panic nor hang.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\n..hi\r\n.\r\nQUIT\r\n",
		"HELO x\r\nAUTH PLAIN\r\nAHUAcA==\r\nAUTH LOGIN dQ==\r\n*\r\nAUTH PLAIN =\r\n",
		"EHLO x\r\nSTARTTLS\r\n",
		"DATA-END\r\nCONNECT\r\n\r\nRCPT\r\nMAIL FROM:\r\nDATA x\r\n",
	} {
		f.Add(seed)
	}
	srv := NewUnstartedServer(Options{
		Username: "u", Password: "p", MaxRecipients: 1,
		Rules: []Rule{
			{Command: "RCPT", Arg: "z", Do: Reply(250, "", "forced")},
			{Command: "DATA", Arg: "x", Do: Reply(354, "", "forced")},
			{Command: "NOOP", Do: Raw("x")},
		},
	})
	defer srv.Close()
	f.Fuzz(func(t *testing.T, input string) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newSession(srv, server, 1).run()
		}()
		go io.Copy(io.Discard, client) // replies nobody reads must not block the server
		client.Write([]byte(input))
		client.Close()
		<-done
	})
}
