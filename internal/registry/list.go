package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
)

// OpenPush connects to the repository of ref for pushing. mountFrom lists
// repositories on the same registry that blobs may be mounted from; the
// connection gets pull access to them.
func (c *Client) OpenPush(ctx context.Context, ref reference.Ref, mountFrom []string) (*Repo, error) {
	ep, err := c.endpoint(ref.Domain())
	if err != nil {
		return nil, err
	}
	return c.openRepo(ctx, ep, ref.Path(), ref.FamiliarName(), true, mountFrom)
}

// maxPages bounds how many pages of a paginated list are followed.
const maxPages = 1000

// Tags lists the tags of the repository ref names (on the registry
// itself, or the first mirror that answers for Docker Hub), following the
// registry's pagination.
func (c *Client) Tags(ctx context.Context, ref reference.Ref) ([]string, error) {
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, ep := range eps {
		tags, err := c.tagsAt(ctx, ep, ref)
		if err == nil {
			return tags, nil
		}
		lastErr = err
		if !ep.mirror || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (c *Client) tagsAt(ctx context.Context, ep endpoint, ref reference.Ref) ([]string, error) {
	r, err := c.openRepo(ctx, ep, ref.Path(), ref.FamiliarName(), false, nil)
	if err != nil {
		return nil, err
	}
	var tags []string
	u := fmt.Sprintf("https://%s/v2/%s/tags/list?n=1000", ep.host(), ref.Path())
	err = paginate(ctx, r.client, u, func(body io.Reader) error {
		var page struct {
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(io.LimitReader(body, MaxManifestSize)).Decode(&page); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, "tag list of "+ref.FamiliarName(), err)
		}
		tags = append(tags, page.Tags...)
		return nil
	})
	if err != nil {
		return nil, c.classify(ep, "repository "+ref.FamiliarName(), err)
	}
	return tags, nil
}

// Catalog lists the repositories of the registry domain (GET
// /v2/_catalog, following its pagination), at most max of them (0: all).
func (c *Client) Catalog(ctx context.Context, domain string, max int) ([]string, error) {
	ep, err := c.endpoint(domain)
	if err != nil {
		return nil, err
	}
	rt, err := c.authTransport(ctx, ep, ep.reg, []string{ep.reg.Scope("")})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	var repos []string
	errEnough := fmt.Errorf("enough")
	err = paginate(ctx, client, fmt.Sprintf("https://%s/v2/_catalog?n=100", ep.host()), func(body io.Reader) error {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.NewDecoder(io.LimitReader(body, MaxManifestSize)).Decode(&page); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, "catalog of "+domain, err)
		}
		repos = append(repos, page.Repositories...)
		if max > 0 && len(repos) >= max {
			repos = repos[:max]
			return errEnough
		}
		return nil
	})
	if err == errEnough {
		err = nil
	}
	if err != nil {
		return nil, c.classify(ep, "catalog of "+domain, err)
	}
	return repos, nil
}

// paginate GETs u and then the pages its Link headers point to (rel
// "next"), handing each body to page.
func paginate(ctx context.Context, client *http.Client, u string, page func(io.Reader) error) error {
	for i := 0; u != "" && i < maxPages; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		if err := checkOK(resp); err != nil {
			return err
		}
		err = page(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		next, err := nextLink(resp)
		if err != nil {
			return err
		}
		u = next
	}
	return nil
}

// nextLink is the absolute address of the Link header's rel="next" page,
// or "".
func nextLink(resp *http.Response) (string, error) {
	for _, link := range resp.Header.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			target = strings.Trim(strings.TrimSpace(target), "<>")
			ref, err := url.Parse(target)
			if err != nil {
				return "", errdefs.Wrap(errdefs.ErrInvalid, "pagination link", err)
			}
			return resp.Request.URL.ResolveReference(ref).String(), nil
		}
	}
	return "", nil
}

// checkOK returns the registry's error unless resp is a 200 (closing the
// body then).
func checkOK(resp *http.Response) error {
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return err
	}
	return nil
}
