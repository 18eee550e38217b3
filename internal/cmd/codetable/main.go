// Command codetable prints the README's table of reply codes: every code of
// the seed table, what it means after each command, and what postwise does
// with it. TestREADMETable (in this package) fails when the README's copy
// differs.
//
//	go run ./internal/cmd/codetable
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/postwise/postwise/classify"
)

// typical names the command each code usually answers, and others where
// the code means something else.
var typical = map[int][]string{
	211: {"HELP"}, 214: {"HELP"}, 220: {classify.CmdConnect, classify.CmdSTARTTLS}, 221: {classify.CmdQUIT},
	250: {classify.CmdMAIL, classify.CmdETRN}, 251: {classify.CmdRCPT, classify.CmdETRN},
	252: {classify.CmdVRFY, classify.CmdETRN}, 253: {classify.CmdETRN}, 354: {classify.CmdDATA}, 355: {"BDAT"},
	421: {classify.CmdMAIL}, 432: {classify.CmdAUTH}, 450: {classify.CmdRCPT, classify.CmdATRN},
	451: {classify.CmdDataEnd, classify.CmdATRN}, 452: {classify.CmdMAIL, classify.CmdRCPT}, 453: {classify.CmdATRN},
	454: {classify.CmdSTARTTLS, classify.CmdAUTH}, 458: {classify.CmdETRN}, 459: {classify.CmdETRN},
	500: {classify.CmdEHLO}, 501: {classify.CmdMAIL}, 502: {classify.CmdEHLO}, 503: {classify.CmdDATA},
	504: {classify.CmdAUTH}, 521: {classify.CmdConnect}, 530: {classify.CmdMAIL, classify.CmdSTARTTLS},
	534: {classify.CmdAUTH}, 538: {classify.CmdAUTH}, 550: {classify.CmdRCPT, classify.CmdMAIL},
	551: {classify.CmdRCPT}, 552: {classify.CmdRCPT, classify.CmdDataEnd}, 553: {classify.CmdRCPT},
	554: {classify.CmdConnect, classify.CmdDataEnd},
}

func main() {
	if err := write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func write(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| Code | After | Meaning | Class | postwise does | Reason |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, code := range classify.SeedCodes() {
		cmds := typical[code]
		if len(cmds) == 0 {
			return fmt.Errorf("code %d has no typical command in codetable", code)
		}
		for _, cmd := range cmds {
			v := classify.ClassifyReply(classify.Reply{Code: code, Command: cmd})
			reason := string(v.Reason)
			if reason == "" {
				reason = "–"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", code, cmd,
				markdown(v.Description), v.Class, v.Action, reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdown escapes what a table cell cannot hold: pipes, and angle brackets,
// which would be read as HTML tags ("<x>").
func markdown(s string) string {
	return strings.NewReplacer("|", `\|`, "<", `\<`, ">", `\>`).Replace(s)
}
