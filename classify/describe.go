package classify

//go:generate go run ./internal/gen -data data -out tables_gen.go

// Describe returns what a reply code means, from the seed reply-code table
// (data/seed-smtp-reply-codes.txt). Where the seed merges several meanings
// into one code, Describe gives the one for the commands that usually
// produce the code; DescribeReply picks by the command the reply answered.
// A code the table lacks is described by its class; a number that is not a
// reply code gives "".
func Describe(code int) string {
	return DescribeReply(code, "")
}

// DescribeReply returns what code means as the answer to command (one of
// the names Reply.Command uses): 250 after ETRN is "OK, queuing for node <x>
// started", after MAIL "Requested mail action okay, completed". It never
// allocates.
func DescribeReply(code int, command string) string {
	if d, ok := seedDescription(code, command); ok {
		return d
	}
	if !validCode(code) {
		return ""
	}
	switch code / 100 {
	case 2:
		return "Positive completion (unlisted code)"
	case 3:
		return "Positive intermediate reply (unlisted code)"
	case 4:
		return "Transient negative completion (unlisted code)"
	default:
		return "Permanent negative completion (unlisted code)"
	}
}

// DescribeEnhanced returns the IANA registry's description of an RFC 3463
// enhanced status code ("5.1.1" → "Bad destination mailbox address"). A code
// whose detail the registry does not list is described by its subject ("5.1.99"
// → "Addressing Status"), and the registry's own notation for class and
// subject rows is understood too ("4.XXX.YYY", "X.1.YYY", "X.1.1"). Anything
// else gives "". It never allocates.
func DescribeEnhanced(code string) string {
	class, subject, detail, ok := splitEnhanced(code)
	if !ok {
		return ""
	}
	return describeEnhanced(class, subject, detail)
}

// describeEnhanced describes a code splitEnhanced accepted.
func describeEnhanced(class, subject, detail int) string {
	if subject < 0 { // "4.XXX.YYY"
		return enhancedClasses[class]
	}
	if subject >= len(enhancedSubjects) || enhancedSubjects[subject] == "" {
		if class > 0 {
			return enhancedClasses[class]
		}
		return ""
	}
	if detail >= 0 && detail < len(enhancedDetails[subject]) {
		if d := enhancedDetails[subject][detail]; d != "" {
			return d
		}
	}
	return enhancedSubjects[subject]
}

// SeedCodes returns the reply codes of the seed table, in its order.
func SeedCodes() []int {
	return append([]int(nil), seedCodes[:]...)
}

// splitEnhanced parses "C.S.D" with C one of 2, 4, 5 (or X) and S, D of one
// to three digits (or XXX and YYY). Wildcards come back as -1; class X as 0.
func splitEnhanced(code string) (class, subject, detail int, ok bool) {
	i := 0
	switch {
	case len(code) >= 2 && code[1] == '.' && (code[0] == '2' || code[0] == '4' || code[0] == '5'):
		class = int(code[0] - '0')
	case len(code) >= 2 && code[1] == '.' && code[0] == 'X':
		class = 0
	default:
		return 0, 0, 0, false
	}
	i = 2
	subject, i, ok = enhancedPart(code, i, "XXX")
	if !ok || i >= len(code) || code[i] != '.' {
		return 0, 0, 0, false
	}
	detail, i, ok = enhancedPart(code, i+1, "YYY")
	if !ok || i != len(code) {
		return 0, 0, 0, false
	}
	switch {
	case class == 0 && subject < 0: // "X.XXX.…" names nothing
		return 0, 0, 0, false
	case class > 0 && subject < 0 && detail >= 0: // "4.XXX.1"
		return 0, 0, 0, false
	case subject >= 0 && detail < 0 && class > 0: // "4.1.YYY": describe the subject
		return class, subject, -1, true
	}
	return class, subject, detail, true
}

// enhancedPart reads one to three digits, or the wildcard, at code[i:].
func enhancedPart(code string, i int, wildcard string) (n, next int, ok bool) {
	if wildcard != "" && len(code)-i >= len(wildcard) && code[i:i+len(wildcard)] == wildcard {
		return -1, i + len(wildcard), true
	}
	start := i
	for i < len(code) && i-start < 3 && code[i] >= '0' && code[i] <= '9' {
		n = n*10 + int(code[i]-'0')
		i++
	}
	if i == start {
		return 0, i, false
	}
	if i < len(code) && code[i] >= '0' && code[i] <= '9' { // a fourth digit
		return 0, i, false
	}
	return n, i, true
}

func validCode(code int) bool {
	return code >= 200 && code <= 599
}
