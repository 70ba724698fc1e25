package berthtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest/wait"
)

// sharedContainers are this process's shared containers by what they
// were asked for: the one piece of process-wide state of the package, as
// a test binary is the unit containers are shared in.
var sharedContainers struct {
	mu sync.Mutex
	m  map[string]*sharedContainer
}

type sharedContainer struct {
	once sync.Once
	c    *Container
	err  error
}

// runShared returns the shared container of kind for spec, starting it on
// first use.
func runShared(t testing.TB, kind string, spec berth.Spec, waits []wait.Strategy) (*Container, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	key := kind + " " + string(b)
	for _, w := range waits {
		key += fmt.Sprintf(" %v", w)
	}
	sharedContainers.mu.Lock()
	if sharedContainers.m == nil {
		sharedContainers.m = map[string]*sharedContainer{}
	}
	sc := sharedContainers.m[key]
	if sc == nil {
		sc = &sharedContainer{}
		sharedContainers.m[key] = sc
	}
	sharedContainers.mu.Unlock()
	sc.once.Do(func() { sc.c, sc.err = run(t, spec, waits, true) })
	return sc.c, sc.err
}
