package berth

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// SearchResult is a repository found by Search, with Docker Hub's
// fields (a private registry's catalog gives only the name).
type SearchResult struct {
	Name        string `json:"Name"`
	Description string `json:"Description"`
	StarCount   int    `json:"StarCount"`
	IsOfficial  bool   `json:"IsOfficial"`
	IsAutomated bool   `json:"IsAutomated"`
}

// Search finds repositories, as `docker search`: term "redis" asks
// Docker Hub's search service; "host:5000/redis" asks that registry's
// catalog (/v2/_catalog, all pages) for the repositories whose names
// contain "redis", ignoring case, named "host:5000/<repository>".
// WithSearchLimit (default 25) and WithSearchFilter narrow the results;
// a malformed filter is an ErrInvalid error.
func (r *Runtime) Search(ctx context.Context, term string, opts ...RegistryOption) ([]SearchResult, error) {
	call := makeRegistryCall(opts)
	match, err := searchFilter(call.filters)
	if err != nil {
		return nil, err
	}
	limit := call.limit
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > 100 {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("limit %d is outside the range of [1, 100]", limit))
	}
	cl, err := r.registryClient(call)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// Docker asks for limit results and filters them; a catalog has no
	// stars to filter by, so ask it for all matches when filtering.
	ask := limit
	if len(call.filters) > 0 {
		ask = 0
	}
	found, err := cl.Search(ctx, term, ask)
	if err != nil {
		return nil, err
	}
	var out []SearchResult
	for _, f := range found {
		res := SearchResult(f)
		if match(res) {
			out = append(out, res)
		}
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// searchFilter parses docker's search filters into a predicate.
func searchFilter(filters []string) (func(SearchResult) bool, error) {
	var preds []func(SearchResult) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bad format of filter (expected name=value): %s", f))
		}
		switch strings.ToLower(k) {
		case "stars":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter 'stars=%s'", v))
			}
			preds = append(preds, func(r SearchResult) bool { return r.StarCount >= n })
		case "is-official", "is-automated":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s=%s'", k, v))
			}
			if strings.ToLower(k) == "is-official" {
				preds = append(preds, func(r SearchResult) bool { return r.IsOfficial == b })
			} else {
				preds = append(preds, func(r SearchResult) bool { return r.IsAutomated == b })
			}
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	return func(r SearchResult) bool {
		for _, p := range preds {
			if !p(r) {
				return false
			}
		}
		return true
	}, nil
}
