package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// SearchResult is one repository a search found, with Docker Hub's
// fields (a registry's catalog has only names).
type SearchResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	IsAutomated bool   `json:"is_automated"`
}

// SplitSearchTerm splits docker's search argument into the registry to
// ask and the term: "host:5000/redis" asks host:5000 for "redis"; a first
// part that is no host name (no "." or ":", not localhost) means Docker
// Hub ("docker.io") and the whole argument is the term.
func SplitSearchTerm(s string) (index, term string) {
	first, rest, ok := strings.Cut(s, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io", s
	}
	return first, rest
}

// Search looks for repositories matching term (docker's argument, see
// SplitSearchTerm), at most limit of them: Docker Hub's search service
// for Docker Hub, the registry's catalog otherwise (a case-insensitive
// substring match of the repository names, whose results are named
// host/repository so they can be pulled as they are).
func (c *Client) Search(ctx context.Context, s string, limit int) ([]SearchResult, error) {
	index, term := SplitSearchTerm(s)
	if term == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "search: the search term is empty")
	}
	if isHub(index) {
		return c.searchHub(ctx, term, limit)
	}
	return c.searchCatalog(ctx, index, term, limit)
}

func (c *Client) searchCatalog(ctx context.Context, index, term string, limit int) ([]SearchResult, error) {
	repos, err := c.Catalog(ctx, index, 0)
	if err != nil {
		return nil, err
	}
	sort.Strings(repos)
	needle := strings.ToLower(term)
	var out []SearchResult
	for _, r := range repos {
		if !strings.Contains(strings.ToLower(r), needle) {
			continue
		}
		out = append(out, SearchResult{Name: index + "/" + r})
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// searchHub asks Docker Hub's search service (GET /v1/search?q=&n=), as
// docker does.
func (c *Client) searchHub(ctx context.Context, term string, limit int) ([]SearchResult, error) {
	u, err := url.Parse(c.o.HubSearchURL)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "Docker Hub search address", err)
	}
	ep, err := newEndpoint(u.Host, u.Scheme == "http", false)
	if err != nil {
		return nil, err
	}
	base, err := c.base(ep)
	if err != nil {
		return nil, err
	}
	q := url.Values{"q": {term}}
	if limit > 0 {
		q.Set("n", strconv.Itoa(limit))
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/search"
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	resp, err := (&http.Client{Transport: base, CheckRedirect: checkRedirect}).Do(req)
	if err != nil {
		return nil, c.classify(ep, "search", err)
	}
	defer resp.Body.Close()
	if err := checkOK(resp); err != nil {
		return nil, c.classify(ep, "search of Docker Hub", err)
	}
	var page struct {
		Results []SearchResult `json:"results"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxManifestSize)).Decode(&page); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("search of Docker Hub: malformed answer from %s", u.Host), err)
	}
	if limit > 0 && len(page.Results) > limit {
		page.Results = page.Results[:limit]
	}
	return page.Results, nil
}
