package testservers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Toxiproxy is a running toxiproxy-server.
type Toxiproxy struct {
	*process
	// APIAddr is the HTTP API listener, "127.0.0.1:port".
	APIAddr string
	// APIURL is "http://127.0.0.1:port".
	APIURL string

	client *http.Client
}

// Proxy is one proxy of a Toxiproxy server: connections to Listen are
// forwarded to Upstream, through the proxy's toxics.
type Proxy struct {
	tp *Toxiproxy
	// Name identifies the proxy in the API.
	Name string
	// Listen is where clients connect, "127.0.0.1:port".
	Listen string
	// Upstream is the real server.
	Upstream string
}

// Toxic describes one toxic (see Toxiproxy's README for all types).
// Stream is "downstream" (server to client, the default) or "upstream"
// (client to server). Toxicity is the probability (0..1) that a connection
// gets the toxic; 0 means 1 (always).
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream,omitempty"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// StartToxiproxy starts toxiproxy-server with its API on a free loopback
// port (-host 127.0.0.1 -port <free>), and stops it when the test ends.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	bin := binary(t, "POSTWISE_TOXIPROXY", "toxiproxy-server")
	tp := &Toxiproxy{client: &http.Client{Timeout: 30 * time.Second}}
	argsFor := func(int) []string {
		port := FreePort(t)
		tp.APIAddr = loopback(port)
		tp.APIURL = "http://" + tp.APIAddr
		return []string{"-host", "127.0.0.1", "-port", strconv.Itoa(port)}
	}
	ready := func(ctx context.Context) error {
		return httpReady(ctx, tp.client, tp.APIURL+"/version")
	}
	tp.process = start(t, "toxiproxy", bin, 15*time.Second, argsFor, ready)
	return tp
}

func (tp *Toxiproxy) api(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if err := doJSON(tp.client, method, tp.APIURL+path, body, out); err != nil {
		t.Fatalf("testservers: toxiproxy API: %v", err)
	}
}

// NewProxy creates an enabled proxy named name that listens on a free
// loopback port and forwards to upstream ("host:port").
func (tp *Toxiproxy) NewProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	var created struct {
		Name     string `json:"name"`
		Listen   string `json:"listen"`
		Upstream string `json:"upstream"`
	}
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		err = doJSON(tp.client, http.MethodPost, tp.APIURL+"/proxies", map[string]any{
			"name":     name,
			"listen":   FreeAddr(t),
			"upstream": upstream,
			"enabled":  true,
		}, &created)
		if err == nil {
			return &Proxy{tp: tp, Name: created.Name, Listen: created.Listen, Upstream: created.Upstream}
		}
	}
	t.Fatalf("testservers: toxiproxy: creating proxy %q: %v", name, err)
	return nil
}

func (p *Proxy) path() string { return "/proxies/" + url.PathEscape(p.Name) }

// AddToxic adds a toxic to the proxy. Name defaults to "<type>_<stream>".
func (p *Proxy) AddToxic(t testing.TB, tx Toxic) {
	t.Helper()
	if tx.Stream == "" {
		tx.Stream = "downstream"
	}
	if tx.Toxicity == 0 {
		tx.Toxicity = 1
	}
	if tx.Name == "" {
		tx.Name = tx.Type + "_" + tx.Stream
	}
	if tx.Attributes == nil {
		tx.Attributes = map[string]any{}
	}
	p.tp.api(t, http.MethodPost, p.path()+"/toxics", tx, nil)
}

// RemoveToxic removes the toxic called name.
func (p *Proxy) RemoveToxic(t testing.TB, name string) {
	t.Helper()
	p.tp.api(t, http.MethodDelete, p.path()+"/toxics/"+url.PathEscape(name), nil, nil)
}

// RemoveAllToxics removes every toxic of the proxy.
func (p *Proxy) RemoveAllToxics(t testing.TB) {
	t.Helper()
	var toxics []Toxic
	p.tp.api(t, http.MethodGet, p.path()+"/toxics", nil, &toxics)
	for _, tx := range toxics {
		p.RemoveToxic(t, tx.Name)
	}
}

// SetEnabled enables or disables the proxy. Disabling closes all its
// connections and refuses new ones (the server looks down).
func (p *Proxy) SetEnabled(t testing.TB, enabled bool) {
	t.Helper()
	p.tp.api(t, http.MethodPost, p.path(), map[string]any{"enabled": enabled}, nil)
}

// Delete removes the proxy.
func (p *Proxy) Delete(t testing.TB) {
	t.Helper()
	p.tp.api(t, http.MethodDelete, p.path(), nil, nil)
}

// Latency delays all data on stream by latency, plus or minus jitter.
func (p *Proxy) Latency(t testing.TB, stream string, latency, jitter time.Duration) string {
	t.Helper()
	return p.add(t, "latency", stream, map[string]any{"latency": ms(latency), "jitter": ms(jitter)})
}

// ResetPeer closes connections with a TCP RST after timeout (0: at once,
// on the next data).
func (p *Proxy) ResetPeer(t testing.TB, stream string, timeout time.Duration) string {
	t.Helper()
	return p.add(t, "reset_peer", stream, map[string]any{"timeout": ms(timeout)})
}

// Timeout stops all data on stream and closes the connection after timeout;
// 0 holds it forever (a stalled peer) until the toxic is removed.
func (p *Proxy) Timeout(t testing.TB, stream string, timeout time.Duration) string {
	t.Helper()
	return p.add(t, "timeout", stream, map[string]any{"timeout": ms(timeout)})
}

// Bandwidth limits stream to rateKB kilobytes per second.
func (p *Proxy) Bandwidth(t testing.TB, stream string, rateKB int) string {
	t.Helper()
	return p.add(t, "bandwidth", stream, map[string]any{"rate": rateKB})
}

// Slicer cuts data on stream into pieces of averageSize±sizeVariation bytes,
// delay apart.
func (p *Proxy) Slicer(t testing.TB, stream string, averageSize, sizeVariation int, delay time.Duration) string {
	t.Helper()
	return p.add(t, "slicer", stream, map[string]any{
		"average_size":   averageSize,
		"size_variation": sizeVariation,
		"delay":          delay.Microseconds(),
	})
}

// LimitData closes the connection after bytes bytes went through on stream.
func (p *Proxy) LimitData(t testing.TB, stream string, bytes int) string {
	t.Helper()
	return p.add(t, "limit_data", stream, map[string]any{"bytes": bytes})
}

// SlowClose delays closing the connection by delay.
func (p *Proxy) SlowClose(t testing.TB, stream string, delay time.Duration) string {
	t.Helper()
	return p.add(t, "slow_close", stream, map[string]any{"delay": ms(delay)})
}

// add adds a toxic with the default name and returns the name.
func (p *Proxy) add(t testing.TB, typ, stream string, attrs map[string]any) string {
	t.Helper()
	if stream == "" {
		stream = "downstream"
	}
	name := typ + "_" + stream
	p.AddToxic(t, Toxic{Name: name, Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs})
	return name
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Reset re-enables every proxy and removes every toxic (POST /reset).
func (tp *Toxiproxy) Reset(t testing.TB) {
	t.Helper()
	tp.api(t, http.MethodPost, "/reset", nil, nil)
}
