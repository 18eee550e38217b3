package classify

import "time"

// containsFold reports whether s contains the ASCII text sub, ignoring ASCII
// case, without allocating (strings.ToLower would copy every reply's text).
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			if lower(s[i+j]) != lower(sub[j]) {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// delayInText finds the first "N <unit>" in a reply's text, where unit is a
// word for seconds, minutes or hours ("retry in 300 seconds", "come back in
// 5 min"), and returns it as a duration; 0 when there is none. Numbers with
// other words after them ("limit 100 messages") are not delays.
func delayInText(s string) time.Duration {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || (i > 0 && (isDigit(s[i-1]) || s[i-1] == '.')) {
			continue
		}
		n, j := 0, i
		for j < len(s) && isDigit(s[j]) && n < 1e6 {
			n = n*10 + int(s[j]-'0')
			j++
		}
		for j < len(s) && isDigit(s[j]) { // absurdly long: keep the cap
			j++
		}
		for j < len(s) && s[j] == ' ' {
			j++
		}
		w := j
		for w < len(s) && isLetter(s[w]) {
			w++
		}
		if unit := unitOf(s[j:w]); unit > 0 && n > 0 {
			return time.Duration(n) * unit
		}
		i = j - 1
	}
	return 0
}

// unitOf returns the unit of time word names ("s", "secs", "Minutes", …),
// or 0. It lowers the word into an array so that the switch compares
// without allocating.
func unitOf(word string) time.Duration {
	var b [len("minutes")]byte
	if word == "" || len(word) > len(b) {
		return 0
	}
	for i := 0; i < len(word); i++ {
		b[i] = lower(word[i])
	}
	switch string(b[:len(word)]) {
	case "s", "sec", "secs", "second", "seconds":
		return time.Second
	case "m", "min", "mins", "minute", "minutes":
		return time.Minute
	case "h", "hour", "hours":
		return time.Hour
	}
	return 0
}

func isDigit(b byte) bool  { return b >= '0' && b <= '9' }
func isLetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }
