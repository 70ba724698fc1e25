package berth

import "github.com/berth-run/berth/internal/registry"

// WithRegistryDialer routes the Runtime's registry connections through
// dial: tests map names such as "registry.test" to loopback addresses with
// it (testutil.LoopbackDialer), and refuse everything else.
func WithRegistryDialer(dial registry.DialFunc) Option {
	return func(o *options) { o.registry.dial = dial }
}
