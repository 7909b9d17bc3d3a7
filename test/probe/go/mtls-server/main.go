// Command mtls-server is a Go HTTPS server for the prober's tests, configurable into the correct
// mutual TLS setup and into the mistakes Go services make in practice.
//
// Flags pick the client authentication mode (tls.ClientAuthType), whether the bundle is given as
// ClientCAs, the minimum TLS version, the TLS 1.2 cipher suites and an optional CRL file. Go's
// crypto/tls never checks revocation itself, so the CRL is enforced here in VerifyPeerCertificate,
// the way a Go service has to do it. It prints "listening <addr>" once, then answers every request
// with 200 "ok".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"os"
)

var clientAuthModes = map[string]tls.ClientAuthType{
	"none":               tls.NoClientCert,
	"request":            tls.RequestClientCert,
	"require-any":        tls.RequireAnyClientCert,
	"verify-if-given":    tls.VerifyClientCertIfGiven,
	"require-and-verify": tls.RequireAndVerifyClientCert,
}

var minVersions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

// AEAD suites with ECDHE only: what a hardened Go service lists (TLS 1.3 suites are not configurable).
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func main() {
	certFile := flag.String("cert", "", "server certificate chain (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	bundleFile := flag.String("bundle", "", "trust bundle for client certificates (PEM)")
	crlFile := flag.String("crl", "", "CRLs (PEM) to refuse revoked client certificates with; empty: no revocation check")
	clientAuth := flag.String("client-auth", "require-and-verify", "none, request, require-any, verify-if-given or require-and-verify")
	clientCAs := flag.Bool("client-cas", true, "use the bundle as ClientCAs (false: Go falls back to the system roots)")
	minVersion := flag.String("min-version", "1.2", "1.0, 1.1, 1.2 or 1.3")
	ciphers := flag.String("ciphers", "aead", "aead (ECDHE + AEAD only) or default (Go's defaults, CBC included)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()

	mode, ok := clientAuthModes[*clientAuth]
	if !ok {
		fail("unknown -client-auth %q", *clientAuth)
	}
	version, ok := minVersions[*minVersion]
	if !ok {
		fail("unknown -min-version %q", *minVersion)
	}
	certificate, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("loading the server certificate: %v", err)
	}
	config := &tls.Config{
		Certificates: []tls.Certificate{certificate},
		ClientAuth:   mode,
		MinVersion:   version,
	}
	if *clientCAs {
		bundlePem, err := ioutil.ReadFile(*bundleFile)
		if err != nil {
			fail("reading the bundle: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundlePem) {
			fail("the bundle holds no certificate")
		}
		config.ClientCAs = pool
	}
	switch *ciphers {
	case "aead":
		config.CipherSuites = aeadSuites
	case "default":
	default:
		fail("unknown -ciphers %q", *ciphers)
	}
	if *crlFile != "" {
		revoked, err := readRevokedSerials(*crlFile)
		if err != nil {
			fail("reading the CRL: %v", err)
		}
		config.VerifyPeerCertificate = refuseRevoked(revoked)
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening %s\n", listener.Addr())
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("content-type", "text/plain")
			_, _ = w.Write([]byte("ok"))
		}),
		TLSConfig: config,
	}
	if err := server.ServeTLS(listener, "", ""); err != nil {
		fail("serve: %v", err)
	}
}

// readRevokedSerials reads every X509 CRL block of the file, keyed by issuer name and serial. A
// test fixture: the test fetched the CRLs from its own CA over TLS, so their signatures are not
// verified here; a real service must check them (RevocationList.CheckSignatureFrom) and refresh
// them before their NextUpdate.
func readRevokedSerials(path string) (map[string]bool, error) {
	data, err := ioutil.ReadFile(path)
	if err != nil {
		return nil, err
	}
	revoked := map[string]bool{}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		list, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, err
		}
		for _, entry := range list.RevokedCertificates {
			revoked[string(list.RawIssuer)+"/"+entry.SerialNumber.String()] = true
		}
	}
	return revoked, nil
}

// refuseRevoked checks the client's leaf (issuer and serial) against the CRL entries. It also runs
// for RequestClientCert and RequireAnyClientCert, where Go verified nothing else.
func refuseRevoked(revoked map[string]bool) func([][]byte, [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return nil
		}
		leaf, err := x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return err
		}
		if revoked[string(leaf.RawIssuer)+"/"+leaf.SerialNumber.String()] {
			return errors.New("client certificate revoked")
		}
		return nil
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
