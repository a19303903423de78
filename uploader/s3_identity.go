package uploader

import (
	"net"
	"net/url"
	"path"
	"strings"
)

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
