// Package registry speaks the OCI distribution API for berth: it resolves
// references to manifests (picking a platform from an index), streams blobs,
// uploads blobs and manifests, lists tags and catalogs, searches Docker Hub,
// and logs in. It knows nothing of the store: the root package streams what
// it fetches into the store and reads what it pushes from there.
//
// Authentication, the /v2/ ping and the bearer token dance come from
// go-containerregistry's transport and authn packages; this package adds
// what a docker-like engine needs around them:
//
//   - the registry configuration of berth's config file (insecure
//     registries, mirrors, CA directories), with docker's defaults:
//     loopback registries are insecure, everything else is HTTPS-only with
//     a clear error that names the setting to change;
//   - credentials from berth's own file and from docker's config.json
//     (auths, credsStore, credHelpers), or given for one call;
//   - raw, unverified blob streams (the caller hashes while it unpacks, so
//     a layer is read once), with errors classed by errdefs kinds.
package registry
