// Package seed reads classify's data files: the seed reply-code table with its
// repairs and per-command meanings, and the enhanced status code registry.
// The generator builds the package's tables from it, and the tests use it to
// prove that every row of every file made it into those tables.
package seed

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Code is one row of the seed table after repairs, with its meanings.
type Code struct {
	Code      int
	Raw       string            // the description as the seed has it
	Sentences []string          // Raw after repairs, split into sentences
	Default   string            // the meaning for commands not in ByCommand
	ByCommand map[string]string // meanings that fit one command
	Dropped   map[int]string    // sentence number → why it is not used
}

// Load reads seed-smtp-reply-codes.txt, seed-fixes.tsv and
// reply-contexts.tsv from dir, and checks that every sentence of every code
// is used or dropped with a reason.
func Load(dir string) ([]Code, error) {
	codes, err := readSeed(filepath.Join(dir, "seed-smtp-reply-codes.txt"))
	if err != nil {
		return nil, err
	}
	fixes, err := readTSV(filepath.Join(dir, "seed-fixes.tsv"))
	if err != nil {
		return nil, err
	}
	contexts, err := readTSV(filepath.Join(dir, "reply-contexts.tsv"))
	if err != nil {
		return nil, err
	}

	byCode := map[int]*Code{}
	for i := range codes {
		c := &codes[i]
		text := c.Raw
		for _, f := range fixes {
			if len(f) != 2 {
				return nil, fmt.Errorf("seed-fixes.tsv: want 2 columns, got %q", f)
			}
			text = strings.ReplaceAll(text, f[0], f[1])
		}
		c.Sentences = Sentences(text)
		c.ByCommand = map[string]string{}
		c.Dropped = map[int]string{}
		byCode[c.Code] = c
	}

	used := map[int]map[int]bool{}
	for _, row := range contexts {
		if len(row) < 3 {
			return nil, fmt.Errorf("reply-contexts.tsv: want 3 columns, got %q", row)
		}
		code, err := strconv.Atoi(row[0])
		if err != nil {
			return nil, fmt.Errorf("reply-contexts.tsv: bad code %q", row[0])
		}
		c := byCode[code]
		if c == nil {
			return nil, fmt.Errorf("reply-contexts.tsv: code %d is not in the seed table", code)
		}
		if used[code] == nil {
			used[code] = map[int]bool{}
		}
		cmd, what := row[1], row[2]
		if cmd == "-" {
			n, err := sentenceNumber(c, what)
			if err != nil {
				return nil, err
			}
			reason := ""
			if len(row) > 3 {
				reason = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(row[3]), "#"))
			}
			if reason == "" {
				return nil, fmt.Errorf("reply-contexts.tsv: dropping sentence %d of %d needs a reason", n, code)
			}
			c.Dropped[n] = reason
			used[code][n] = true
			continue
		}
		var meaning string
		if text, ok := strings.CutPrefix(what, "="); ok {
			meaning = text
		} else {
			n, err := sentenceNumber(c, what)
			if err != nil {
				return nil, err
			}
			meaning = c.Sentences[n-1]
			used[code][n] = true
		}
		if cmd == "*" {
			c.Default = meaning
		} else {
			c.ByCommand[cmd] = meaning
		}
	}

	for i := range codes {
		c := &codes[i]
		if len(c.Sentences) == 1 && c.Default == "" {
			c.Default = c.Sentences[0]
			continue
		}
		if c.Default == "" {
			return nil, fmt.Errorf("code %d has %d meanings and no default (*) row in reply-contexts.tsv", c.Code, len(c.Sentences))
		}
		for n := 1; n <= len(c.Sentences); n++ {
			if !used[c.Code][n] {
				return nil, fmt.Errorf("sentence %d of code %d (%q) is neither used nor dropped in reply-contexts.tsv", n, c.Code, c.Sentences[n-1])
			}
		}
	}
	return codes, nil
}

func sentenceNumber(c *Code, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > len(c.Sentences) {
		return 0, fmt.Errorf("reply-contexts.tsv: code %d has sentences 1..%d, not %q", c.Code, len(c.Sentences), s)
	}
	return n, nil
}

// readSeed reads the rows "| 250 | text |" of the seed table.
func readSeed(path string) ([]Code, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var codes []Code
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 4 {
			continue
		}
		code, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			continue // the header row
		}
		codes = append(codes, Code{Code: code, Raw: strings.TrimSpace(cells[2])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("%s: no reply codes found", path)
	}
	return codes, nil
}

// Sentences splits a seed description into its sentences, without their
// final full stops. A sentence ends at a full stop followed by an upper-case
// letter, with or without a space between ("ready.Ready to start TLS"), so
// "e.g., info" and "<CRLF>.<CRLF>" stay whole.
func Sentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '.' {
			continue
		}
		j := i + 1
		if j < len(text) && text[j] == ' ' {
			j++
		}
		if j < len(text) && text[j] >= 'A' && text[j] <= 'Z' {
			out = append(out, strings.TrimSpace(text[start:i]))
			start = j
			i = j - 1
		}
	}
	last := strings.TrimSuffix(strings.TrimSpace(text[start:]), ".")
	if last != "" {
		out = append(out, last)
	}
	return out
}

// readTSV reads tab-separated rows, skipping blank lines and # comments.
func readTSV(path string) ([][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows, nil
}

// RowKind says which level of the registry a row describes.
type RowKind int

const (
	ClassRow   RowKind = iota // "4.XXX.YYY"
	SubjectRow                // "X.1.YYY"
	DetailRow                 // "X.1.1"
)

// RegistryRow is one row of the enhanced status code registry.
type RegistryRow struct {
	Code      string // as the registry writes it: "2.XXX.YYY", "X.1.YYY", "X.1.1"
	Kind      RowKind
	Class     int // for ClassRow
	Subject   int // for SubjectRow and DetailRow
	Detail    int // for DetailRow
	Summary   string
	Reference string
	Basic     string // the associated basic codes, in the registry's notation
}

// LoadRegistry reads enhanced-status-codes.tsv.
func LoadRegistry(path string) ([]RegistryRow, error) {
	rows, err := readTSV(path)
	if err != nil {
		return nil, err
	}
	var out []RegistryRow
	for _, cells := range rows[1:] { // the first row names the columns
		if len(cells) < 3 {
			return nil, fmt.Errorf("%s: short row %q", path, cells)
		}
		r := RegistryRow{Code: cells[0], Summary: cells[1], Reference: cells[2]}
		if len(cells) > 3 {
			r.Basic = cells[3]
		}
		parts := strings.Split(r.Code, ".")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: bad code %q", path, r.Code)
		}
		switch {
		case parts[1] == "XXX" && parts[2] == "YYY":
			r.Kind = ClassRow
			r.Class, err = strconv.Atoi(parts[0])
		case parts[0] == "X" && parts[2] == "YYY":
			r.Kind = SubjectRow
			r.Subject, err = strconv.Atoi(parts[1])
		case parts[0] == "X":
			r.Kind = DetailRow
			r.Subject, err = strconv.Atoi(parts[1])
			if err == nil {
				r.Detail, err = strconv.Atoi(parts[2])
			}
		default:
			err = fmt.Errorf("unknown form")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: bad code %q: %v", path, r.Code, err)
		}
		out = append(out, r)
	}
	return out, nil
}
