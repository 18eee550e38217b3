package classify

import (
	"testing"
)

var (
	sinkVerdict Verdict
	sinkReply   Reply
	sinkString  string
)

func BenchmarkClassifyReply(b *testing.B) {
	replies := map[string]Reply{
		"250":           {Code: 250, Enhanced: "2.1.5", Text: "Ok", Command: CmdRCPT},
		"550-5.1.1":     {Code: 550, Enhanced: "5.1.1", Text: "The email account that you tried to reach does not exist", Command: CmdRCPT},
		"451-greylist":  {Code: 451, Enhanced: "4.7.1", Text: "Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", Command: CmdRCPT},
		"421-ratelimit": {Code: 421, Enhanced: "4.7.0", Text: "Try again later, closing connection. (EHLO) s1-20020a05", Command: CmdMAIL},
	}
	for name, r := range replies {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkVerdict = ClassifyReply(r)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for name, in := range map[string]string{
		"single": "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table\r\n",
		"multi": "250-mx.example.com Hello client.example.org [192.0.2.1]\r\n250-SIZE 52428800\r\n" +
			"250-8BITMIME\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				sinkReply, _ = Parse(in)
			}
		})
	}
}

func BenchmarkDescribe(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkString = DescribeReply(250, CmdETRN)
		sinkString = DescribeEnhanced("5.7.26")
	}
}

// TestHotPathsDoNotAllocate holds the allocation targets in ordinary test
// runs, not only when someone reads benchmark output.
func TestHotPathsDoNotAllocate(t *testing.T) {
	r := Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisted, please retry in 60 seconds", Command: CmdRCPT}
	if n := testing.AllocsPerRun(100, func() { sinkVerdict = ClassifyReply(r) }); n != 0 {
		t.Errorf("ClassifyReply allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { sinkString = Describe(550); sinkString = DescribeEnhanced("5.1.1") }); n != 0 {
		t.Errorf("Describe allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { sinkReply, _ = Parse("550 5.1.1 User unknown\r\n") }); n != 0 {
		t.Errorf("Parse of a single line allocates %v times", n)
	}
}
