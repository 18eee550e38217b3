package sendertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

// newCertificate makes a self-signed certificate for the loopback addresses
// and hostname. It is generated per server, in process, so no key material
// lives in the repository and no two servers share a key. ECDSA P-256 keeps
// generation well under a millisecond.
func newCertificate(hostname string) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"sendertest"}, CommonName: hostname},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: the certificate is its own root
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if hostname != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

// tlsState is the server's certificate, made on first use.
type tlsState struct {
	server *tls.Config
	leaf   *x509.Certificate
}

func (s *Server) tlsState() *tlsState {
	s.tlsOnce.Do(func() {
		cert, leaf, err := newCertificate(s.opts.Hostname)
		if err != nil {
			// crypto/rand does not fail on supported platforms; a test
			// helper that cannot make a certificate cannot go on.
			panic("sendertest: generating certificate: " + err.Error())
		}
		s.tls = &tlsState{
			server: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			leaf:   leaf,
		}
	})
	return s.tls
}

// Certificate returns the server's self-signed certificate, generating it
// if needed. It is safe for concurrent use.
func (s *Server) Certificate() *x509.Certificate {
	return s.tlsState().leaf
}

// ClientTLSConfig returns a new TLS configuration for clients of this
// server: it trusts only the server's certificate and names 127.0.0.1 as
// the server, which the certificate covers (as it covers ::1, localhost and
// Options.Hostname). Pass it to go-mail's mail.WithTLSConfig, or to
// StartTLS of net/smtp or go-mail's smtp package. Each call returns a fresh
// copy the caller may change. It is safe for concurrent use.
func (s *Server) ClientTLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
