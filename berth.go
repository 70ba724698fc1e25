package berth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/store"
)

// Default locations of the store; the environment variables BERTH_ROOT and
// BERTH_RUNROOT change them for every Runtime opened without WithRoot or
// WithRunRoot, the package-level functions included.
const (
	DefaultRoot    = "/var/lib/berth"
	DefaultRunRoot = "/run/berth"
)

// Runtime is an opened berth store: its images, containers, volumes and
// networks. Every process that opens the same root sees the same objects;
// a Runtime is safe for concurrent use by many goroutines, and several
// processes may use one root at the same time.
type Runtime struct {
	store *store.Store
	opts  options
}

type options struct {
	root         string
	runRoot      string
	cgroupParent string
	registry     registryOptions // registry.go
	maxLayerSize int64           // uncompressed bytes per layer; 0: archive's default
	exitsSoon    bool            // WithShortLivedProcess
}

// Option configures Open.
type Option func(*options)

// WithRoot sets the store's root directory. Default: $BERTH_ROOT, or
// /var/lib/berth.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// WithRunRoot sets the directory of run-time state (sockets, network
// namespaces, runtime state). Default: $BERTH_RUNROOT, or /run/berth.
func WithRunRoot(dir string) Option { return func(o *options) { o.runRoot = dir } }

// WithCgroupParent sets the cgroup below which containers' cgroups are
// made: an absolute path starts at the roots of the cgroup hierarchies, a
// relative one is below the calling process's own cgroup. A Spec's
// CgroupParent overrides it. Default: "berth", relative.
func WithCgroupParent(path string) Option { return func(o *options) { o.cgroupParent = path } }

// WithMaxLayerSize bounds the uncompressed size of every layer the
// runtime unpacks (pull, load, import): a layer that is larger, such as
// a decompression bomb, is refused with an ErrInvalid error before more
// than that is written. Default: 1 TiB (internal/archive.DefaultMaxSize).
func WithMaxLayerSize(bytes int64) Option { return func(o *options) { o.maxLayerSize = bytes } }

// WithShortLivedProcess tells the runtime that the program exits soon
// after its containers end, as a command line does. Removing a container
// from a bridge network then leaves its veth pair to the kernel's clean-up
// of the container's network namespace, and waits until the kernel
// announces it gone (~13 ms here), instead of deleting it with a request
// that returns at once but keeps a thread in the kernel for ~20 ms more,
// which the program's exit would wait for. Either way nothing of the
// network is left when a removal returns. The CLI sets it.
func WithShortLivedProcess() Option { return func(o *options) { o.exitsSoon = true } }

func makeOptions(opts []Option) (options, error) {
	o := options{root: os.Getenv("BERTH_ROOT"), runRoot: os.Getenv("BERTH_RUNROOT")}
	for _, opt := range opts {
		opt(&o)
	}
	if o.root == "" {
		o.root = DefaultRoot
	}
	if o.runRoot == "" {
		o.runRoot = DefaultRunRoot
	}
	if o.maxLayerSize < 0 {
		return o, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("maximum layer size %d is negative", o.maxLayerSize))
	}
	var err error
	if o.root, err = filepath.Abs(o.root); err != nil {
		return o, errdefs.Wrap(errdefs.ErrInvalid, "store root", err)
	}
	if o.runRoot, err = filepath.Abs(o.runRoot); err != nil {
		return o, errdefs.Wrap(errdefs.ErrInvalid, "run root", err)
	}
	return o, nil
}

// Open opens (creating if needed) the store and repairs what crashed
// processes left half-done. ctx bounds the repair.
func Open(ctx context.Context, opts ...Option) (*Runtime, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	s, err := store.Open(o.root, o.runRoot)
	if err != nil {
		return nil, err
	}
	r := &Runtime{store: s, opts: o}
	r.repairLeftovers(ctx) // of killed starts and removals (check_containers_linux.go)
	if err := ctx.Err(); err != nil {
		s.Close()
		return nil, err
	}
	// Containers whose owner or creator died, and Creates that crashed
	// (monitor_repair_linux.go).
	if err := r.repairContainers(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: repair containers: %w", err)
	}
	return r, nil
}

// Close releases the Runtime's resources. Containers keep running.
func (r *Runtime) Close() error { return r.store.Close() }

// Root is the store's root directory.
func (r *Runtime) Root() string { return r.opts.root }

// RunRoot is the store's run-time directory.
func (r *Runtime) RunRoot() string { return r.opts.runRoot }

// defaultRuntime is opened by the package-level functions on first use.
var defaultRuntime struct {
	once sync.Once
	rt   *Runtime
	err  error
}

// Default returns the Runtime the package-level functions use, opened on
// first use with the default options (BERTH_ROOT, BERTH_RUNROOT honoured).
func Default(ctx context.Context) (*Runtime, error) {
	defaultRuntime.once.Do(func() {
		defaultRuntime.rt, defaultRuntime.err = Open(ctx)
	})
	if defaultRuntime.err != nil {
		return nil, fmt.Errorf("open default runtime: %w", defaultRuntime.err)
	}
	return defaultRuntime.rt, nil
}
