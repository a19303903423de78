package uploader

import (
	"net"
	"net/url"
	"path"
	"strings"
)

// Identifier is implemented by replicas that can name where their objects
// live independently of how the URL was spelled: String shows the URL as
// given (with the region, path-style and endpoint overrides in effect),
// which changes when an operator adds --s3-region or rewrites the
// endpoint, while the objects, and so the spool queued for them, stay the
// same.
type Identifier interface {
	// Identity is the canonical location: for s3, the endpoint's host
	// (lower-cased, without the scheme's default port), the bucket and the
	// prefix (with its trailing slash); for file, the cleaned absolute
	// path. Two replicas with the same Identity hold the same objects.
	Identity() string
}

// IdentityOf returns r's Identity, or its String when r has none (test
// doubles, wrappers from elsewhere): the spool of such a replica is keyed
// by its URL as before.
func IdentityOf(r Replica) string {
	if i, ok := r.(Identifier); ok {
		return i.Identity()
	}
	return r.String()
}

// awsHost stands for AWS S3 itself in identities (no endpoint configured):
// bucket names are global there, so the region is not part of it.
const awsHost = "s3.amazonaws.com"

// identity is the canonical location of an s3 replica whose client talks
// to endpoint ("" for AWS).
func (loc s3Location) identity(endpoint string) string {
	host := awsHost
	if endpoint != "" {
		host = canonicalEndpoint(endpoint)
	}
	return "s3://" + host + "/" + loc.bucket + "/" + loc.prefix
}

// canonicalEndpoint reduces an endpoint URL to what tells servers apart:
// the host lower-cased, the port unless it is the scheme's default, and a
// path if the server is reached below one (a reverse proxy).
func canonicalEndpoint(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(endpoint, "/"))
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	switch {
	case port == "",
		port == "80" && strings.EqualFold(u.Scheme, "http"),
		port == "443" && strings.EqualFold(u.Scheme, "https"):
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6
		}
	default:
		host = net.JoinHostPort(host, port)
	}
	if p := strings.Trim(path.Clean("/"+u.Path), "/"); p != "" {
		host += "/" + p
	}
	return host
}
