package telemetry

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/postwise/postwise/classify"
)

// Every reply a client reads is counted, several per send, and building an
// attribute set (sort, hash, copy) costs more than the count itself; so the
// sets of the replies counter are kept, keyed by their attributes. The key
// space is the metric's own cardinality, small by design; past
// maxCachedSets, sets are built each time rather than kept.
const maxCachedSets = 1024

type serverKey struct {
	address string
	port    int
}

type replyKey struct {
	server  serverKey
	code    int
	class   classify.Class
	command string
}

type setCache struct {
	m sync.Map // replyKey → attribute.Set
	n atomic.Int64
}

// replySet returns the attribute set of the replies counter for a reply
// with verdict v from server.
func (t *Telemetry) replySet(server serverKey, v classify.Verdict) attribute.Set {
	k := replyKey{server, v.Code, v.Class, v.Command}
	if s, ok := t.replySets.m.Load(k); ok {
		return s.(attribute.Set)
	}
	var buf [maxMetricAttrs]attribute.KeyValue
	m := buf[:0]
	if server.address != "" {
		m = append(m, semconv.ServerAddress(server.address))
	}
	if server.port != 0 {
		m = append(m, semconv.ServerPort(server.port))
	}
	if v.Code != 0 {
		m = append(m, ReplyCodeKey.Int(v.Code))
	}
	m = append(m, ReplyClassKey.String(v.Class.String()))
	if v.Command != "" {
		m = append(m, CommandKey.String(v.Command))
	}
	s := attribute.NewSet(m...)
	if t.replySets.n.Load() < maxCachedSets {
		if _, loaded := t.replySets.m.LoadOrStore(k, s); !loaded {
			t.replySets.n.Add(1)
		}
	}
	return s
}
