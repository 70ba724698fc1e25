package berth

// registryOptions are the Runtime's registry settings (insecure
// registries, mirrors, CAs, credentials).
type registryOptions struct{}
