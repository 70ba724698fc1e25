package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
)

// OpenBlob starts downloading the blob d and returns its body and length
// (-1 when the registry does not say). The body is NOT verified: the
// caller hashes it as it reads (a layer is read once, into the store and
// the unpacker at the same time) and must check the digest at the end.
func (r *Repo) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := r.do(ctx, http.MethodGet, r.url("blobs", d.String()), nil, nil, 0, http.StatusOK)
	if err != nil {
		return nil, 0, r.c.classify(r.ep, "blob "+d.String()+" of "+r.display, err)
	}
	return resp.Body, resp.ContentLength, nil
}

// FetchBlob downloads a small blob (an image config) and verifies it
// against desc; a mismatch is an ErrCorrupt error.
func (r *Repo) FetchBlob(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("blob %s: %d bytes is more than the limit of %d", desc.Digest, desc.Size, max))
	}
	body, _, err := r.OpenBlob(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, r.c.classify(r.ep, "blob "+desc.Digest.String(), err)
	}
	if got := digest.FromBytes(b); got != desc.Digest || int64(len(b)) != desc.Size {
		what := "content with digest " + got.String()
		if int64(len(b)) != desc.Size {
			what = fmt.Sprintf("%d bytes, the manifest says %d", len(b), desc.Size)
		}
		return nil, errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("blob %s of %s: registry %s sent %s: digest mismatch", desc.Digest, r.display, r.Host(), what))
	}
	return b, nil
}

// HasBlob reports whether the repository has the blob d (a HEAD request).
func (r *Repo) HasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, r.url("blobs", d.String()), nil, nil, 0, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, r.c.classify(r.ep, "blob "+d.String(), err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// Mount asks the registry to link the blob d from the repository from
// (on the same registry) into this one. It reports whether it did; when it
// did not, it returns the upload session the registry opened instead
// (possibly "", then Upload opens one).
func (r *Repo) Mount(ctx context.Context, d digest.Digest, from string) (bool, string, error) {
	u := fmt.Sprintf("https://%s/v2/%s/blobs/uploads/?mount=%s&from=%s", r.ep.host(), r.repo.RepositoryStr(), url.QueryEscape(d.String()), url.QueryEscape(from))
	resp, err := r.do(ctx, http.MethodPost, u, nil, nil, 0, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, "", r.c.classify(r.ep, "mount of blob "+d.String()+" from "+from, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, "", nil
	}
	loc, err := resp.Location()
	if err != nil {
		return false, "", nil
	}
	return false, loc.String(), nil
}

// Upload sends the blob d of size bytes read from body, in one request,
// to the upload session location (one is opened when it is "").
func (r *Repo) Upload(ctx context.Context, location string, d digest.Digest, size int64, body io.Reader) error {
	what := "upload of blob " + d.String() + " to " + r.display
	if location == "" {
		resp, err := r.do(ctx, http.MethodPost, fmt.Sprintf("https://%s/v2/%s/blobs/uploads/", r.ep.host(), r.repo.RepositoryStr()), nil, nil, 0, http.StatusAccepted)
		if err != nil {
			return r.c.classify(r.ep, what, err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return fmt.Errorf("%s: the registry gave no upload location: %w", what, err)
		}
		location = loc.String()
	}
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("%s: upload location %q: %w", what, location, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := r.do(ctx, http.MethodPut, u.String(), hdr, body, size, http.StatusCreated, http.StatusNoContent)
	if err != nil {
		return r.c.classify(r.ep, what, err)
	}
	resp.Body.Close()
	return nil
}

// PutManifest uploads raw as the manifest ref (a tag or its digest) with
// media type mt, and returns the digest the registry recorded.
func (r *Repo) PutManifest(ctx context.Context, ref, mt string, raw []byte) (digest.Digest, error) {
	what := "manifest " + r.display + ":" + ref
	hdr := http.Header{"Content-Type": {mt}}
	resp, err := r.do(ctx, http.MethodPut, r.url("manifests", ref), hdr, bytes.NewReader(raw), int64(len(raw)), http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return "", r.c.classify(r.ep, what, err)
	}
	resp.Body.Close()
	want := digest.FromBytes(raw)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return "", errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("%s: the registry stored digest %s, want %s", what, got, want))
	}
	return want, nil
}
