package preflight

// SetHostname replaces os.Hostname for a test; the returned func restores it.
func SetHostname(f func() (string, error)) (restore func()) {
	old := hostname
	hostname = f
	return func() { hostname = old }
}

// SetDefaultPoliciesDir replaces policies.dir's default for a test (the
// directory dev mode leaves unread); the returned func restores it.
func SetDefaultPoliciesDir(dir string) (restore func()) {
	old := defaultPoliciesDir
	defaultPoliciesDir = dir
	return func() { defaultPoliciesDir = old }
}
