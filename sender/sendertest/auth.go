package sendertest

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// auth runs an AUTH exchange (RFC 4954) for PLAIN (RFC 4616) or LOGIN and
// returns its final reply. Every client line of the exchange is recorded
// as Redacted.
func (s *session) auth(arg string) (reply, bool) {
	o := &s.srv.opts
	switch {
	case o.Username == "":
		return reply{502, "5.5.1", "AUTH not available"}, true
	case !s.greeted:
		return reply{503, "5.5.1", "Send EHLO first"}, true
	case s.authed:
		return reply{503, "5.5.1", "Already authenticated"}, true
	case s.inTx:
		return reply{503, "5.5.1", "AUTH not allowed during a transaction"}, true
	}
	mech, initial, hasInitial := strings.Cut(arg, " ")
	var user, pass []byte
	switch strings.ToUpper(mech) {
	case "PLAIN":
		resp, r, done := s.response(initial, hasInitial, "")
		if done {
			return r, r.code != 0
		}
		// authzid NUL authcid NUL passwd
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 {
			return reply{501, "5.5.2", "Malformed PLAIN response"}, true
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		resp, r, done := s.response(initial, hasInitial, "Username:")
		if done {
			return r, r.code != 0
		}
		user = resp
		if pass, r, done = s.response("", false, "Password:"); done {
			return r, r.code != 0
		}
	default:
		return reply{504, "5.5.4", "Unrecognized authentication mechanism"}, true
	}
	// Constant time out of habit: this code is read as an example.
	if subtle.ConstantTimeCompare(user, []byte(o.Username)) == 1 &&
		subtle.ConstantTimeCompare(pass, []byte(o.Password)) == 1 {
		return reply{235, "2.7.0", "Authentication successful"}, true
	}
	return reply{535, "5.7.8", "Authentication credentials invalid"}, true
}

// response returns the client's decoded SASL response: the initial
// response if the client gave one, else the answer to a 334 challenge.
// done means the exchange ends with final, whose code is 0 when the
// connection broke.
func (s *session) response(initial string, hasInitial bool, challenge string) (resp []byte, final reply, done bool) {
	line := initial
	if !hasInitial {
		if s.write(reply{334, "", base64.StdEncoding.EncodeToString([]byte(challenge))}) != nil {
			return nil, reply{}, true
		}
		var ok bool
		if line, ok = s.readLine(); !ok {
			return nil, reply{}, true
		}
		if line == "*" {
			s.record("", line)
		} else {
			s.record("", Redacted)
		}
	}
	switch line {
	case "*": // RFC 4954 §4: the client cancels
		return nil, reply{501, "5.0.0", "Authentication cancelled"}, true
	case "=": // RFC 4954 §4: an empty initial response
		return []byte{}, reply{}, false
	}
	resp, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, reply{501, "5.5.2", "Invalid base64"}, true
	}
	return resp, reply{}, false
}
