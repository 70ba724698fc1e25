package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-run/berth/internal/errdefs"
)

// classify turns the error of a request about what ("manifest for
// busybox:latest", "blob sha256:...") into one with a berth kind and a
// message in docker's words. Errors of the network stay matchable
// (errors.Is(err, syscall.ECONNREFUSED)).
func (c *Client) classify(ep endpoint, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var k *errdefs.Kind
	if errors.As(err, &k) {
		return err
	}
	host := ep.host()
	var terr *transport.Error
	if errors.As(err, &terr) {
		return classifyStatus(what, terr)
	}
	var ph *plainHTTPError
	if errors.As(err, &ph) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("registry %s speaks plain HTTP, and berth uses only HTTPS for registries that are not insecure: "+
			"if you trust it, add %q to \"insecure-registries\" in %s", host, host, c.o.ConfigFile)
	}
	if isTLSVerifyError(err) {
		return fmt.Errorf("registry %s: %w: put the registry's CA certificate in /etc/berth/certs.d/%s/ca.crt "+
			"(or /etc/docker/certs.d/%s/ca.crt), or add %q to \"insecure-registries\" in %s", host, tlsCause(err), host, host, host, c.o.ConfigFile)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("cannot reach registry %s: %w", host, op)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("cannot reach registry %s: %w", host, dns)
	}
	return fmt.Errorf("registry %s: %w", host, err)
}

// classifyStatus classes a registry's error response. Docker's text for
// an error code is the code in lower case and words, then the message:
// "manifest unknown: manifest unknown".
func classifyStatus(what string, e *transport.Error) error {
	msg := statusText(e)
	codes := map[transport.ErrorCode]bool{}
	for _, d := range e.Errors {
		codes[d.Code] = true
	}
	switch {
	case codes[transport.ManifestUnknownErrorCode] || codes[transport.NameUnknownErrorCode] ||
		codes[transport.BlobUnknownErrorCode] || e.StatusCode == http.StatusNotFound:
		return errdefs.Wrap(errdefs.ErrNotFound, what+" not found", errors.New(msg))
	case codes[transport.UnauthorizedErrorCode] || codes[transport.DeniedErrorCode] ||
		e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return errdefs.Wrap(errdefs.ErrUnauthorized, what, errors.New(msg))
	case codes[transport.ManifestInvalidErrorCode] || codes[transport.NameInvalidErrorCode] ||
		codes[transport.TagInvalidErrorCode] || codes[transport.DigestInvalidErrorCode] ||
		codes[transport.SizeInvalidErrorCode] || codes[transport.BlobUploadInvalidErrorCode] ||
		codes[transport.ManifestBlobUnknownErrorCode] || e.StatusCode == http.StatusBadRequest:
		return errdefs.Wrap(errdefs.ErrInvalid, what, errors.New(msg))
	case codes[transport.UnsupportedErrorCode] || e.StatusCode == http.StatusMethodNotAllowed:
		return errdefs.Wrap(errdefs.ErrNotSupported, what, errors.New(msg))
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// statusText renders a registry error response as docker does.
func statusText(e *transport.Error) string {
	var parts []string
	for _, d := range e.Errors {
		code := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
		if d.Message != "" {
			parts = append(parts, code+": "+d.Message)
		} else {
			parts = append(parts, code)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return strings.Join(parts, "; ")
}

func isTLSVerifyError(err error) bool {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cv)
}

// tlsCause digs the certificate error out of the URL and multi-scheme
// wrappers, for a shorter message.
func tlsCause(err error) error {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv
	}
	return err
}
