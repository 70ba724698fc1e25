package wait

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berth-run/berth"
)

// ForHTTP waits until an HTTP request for path to the container's
// published port answers with status 200 (see WithStatusCodeMatcher and
// WithResponseMatcher).
func ForHTTP(path string) *HTTPStrategy {
	return &HTTPStrategy{path: path, method: http.MethodGet, status: func(code int) bool { return code == http.StatusOK }}
}

// HTTPStrategy is ForHTTP's strategy.
type HTTPStrategy struct {
	timeouts
	path   string
	port   Port
	method string
	status func(int) bool
	body   func([]byte) bool
}

// WithPort names the container port the request goes to. Default: the
// first published TCP port.
func (s *HTTPStrategy) WithPort(p Port) *HTTPStrategy { s.port = p; return s }

// WithMethod sets the request's method. Default GET.
func (s *HTTPStrategy) WithMethod(m string) *HTTPStrategy { s.method = m; return s }

// WithStatusCodeMatcher sets which status codes mean ready. Default: 200.
func (s *HTTPStrategy) WithStatusCodeMatcher(fn func(status int) bool) *HTTPStrategy {
	s.status = fn
	return s
}

// WithResponseMatcher also requires the response's body to satisfy fn.
// Default: any body.
func (s *HTTPStrategy) WithResponseMatcher(fn func(body []byte) bool) *HTTPStrategy {
	s.body = fn
	return s
}

// WithTimeout bounds the wait. Default DefaultTimeout.
func (s *HTTPStrategy) WithTimeout(d time.Duration) *HTTPStrategy { s.timeout = d; return s }

func (s *HTTPStrategy) String() string { return fmt.Sprintf("http %s %s", s.method, s.path) }

// WaitUntilReady implements Strategy.
func (s *HTTPStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	return poll(ctx, c, s.String(), s.get(), 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		addr, err := HostAddr(ctx, c, s.port)
		if err != nil {
			return false, err
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, s.method, "http://"+addr+s.path, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return false, err
		}
		if !s.status(resp.StatusCode) {
			return false, fmt.Errorf("status %s", resp.Status)
		}
		if s.body != nil && !s.body(body) {
			return false, fmt.Errorf("status %s, but the body does not match", resp.Status)
		}
		return true, nil
	})
}
