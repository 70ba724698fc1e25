package testutil

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a reverse proxy on 127.0.0.1 in front of a plain-HTTP
// registry. It counts the blob downloads it passes (GET
// /v2/<name>/blobs/<digest>) and can throttle the bytes of blob bodies, so
// tests can assert "each blob is fetched once" and kill a pull in the
// middle of a download. Name images by Proxy.Addr to go through it; the
// registry sees the proxy's address as the Host, so upload locations
// point back at the proxy too.
type Proxy struct {
	// Addr is the proxy's host:port.
	Addr string

	mu   sync.Mutex
	gets map[string]int // blob digest -> GET requests
	rate atomic.Int64   // bytes per second of blob bodies; 0 = unlimited
	sent atomic.Int64   // blob body bytes sent
}

var blobPath = regexp.MustCompile(`^/v2/.+/blobs/(sha256:[a-f0-9]{64})$`)

// StartProxy starts a proxy to the registry at target (host:port, plain
// HTTP), closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), gets: map[string]int{}}
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(to)
			r.Out.Host = r.In.Host
		},
		Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodGet && blobPath.MatchString(resp.Request.URL.Path) {
				resp.Body = &throttled{r: resp.Body, p: p, ctx: resp.Request.Context()}
			}
			return nil
		},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
			p.mu.Lock()
			p.gets[m[1]]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// BlobGets returns the number of GET requests for each blob so far.
func (p *Proxy) BlobGets() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.gets))
	for k, v := range p.gets {
		out[k] = v
	}
	return out
}

// ResetCounts forgets the counted requests and bytes.
func (p *Proxy) ResetCounts() {
	p.mu.Lock()
	p.gets = map[string]int{}
	p.mu.Unlock()
	p.sent.Store(0)
}

// SetRate limits blob bodies to bytesPerSecond (0: no limit).
func (p *Proxy) SetRate(bytesPerSecond int64) { p.rate.Store(bytesPerSecond) }

// BlobBytes is the number of blob body bytes sent so far.
func (p *Proxy) BlobBytes() int64 { return p.sent.Load() }

// throttled paces a blob body.
type throttled struct {
	r     io.ReadCloser
	p     *Proxy
	ctx   context.Context
	start time.Time
	n     int64
}

func (t *throttled) Read(b []byte) (int, error) {
	rate := t.p.rate.Load()
	if rate > 0 {
		if t.start.IsZero() {
			t.start = time.Now()
		}
		if chunk := int(rate / 20); len(b) > chunk && chunk > 0 {
			b = b[:chunk]
		}
		// Sleep until the bytes sent so far are due.
		due := t.start.Add(time.Duration(float64(t.n) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-t.ctx.Done():
				return 0, t.ctx.Err()
			}
		}
	}
	n, err := t.r.Read(b)
	t.n += int64(n)
	t.p.sent.Add(int64(n))
	return n, err
}

func (t *throttled) Close() error { return t.r.Close() }
