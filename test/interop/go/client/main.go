// Command client calls grpc.health.v1.Health/Check over mutual TLS, for interop tests with
// tlsmesh's grpc-js server credentials.
//
// It trusts bundle.pem from -dir, presents cert.pem/key.pem (unless -no-cert), and accepts the
// server only if its certificate chains to the bundle and names exactly -expect as its SPIFFE ID:
// the host name is not checked, as with SPIFFE certificates that carry only a URI SAN. It prints
// "check <n> <status>" per call and exits 1 on the first failure.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "", "server address host:port")
	dir := flag.String("dir", "", "directory holding bundle.pem, and cert.pem/key.pem unless -no-cert")
	expect := flag.String("expect", "", "the server's SPIFFE ID, matched exactly")
	service := flag.String("service", "", "service name sent in HealthCheckRequest")
	count := flag.Int("n", 1, "number of calls")
	noCert := flag.Bool("no-cert", false, "present no client certificate")
	flag.Parse()
	if *addr == "" || *dir == "" || *expect == "" {
		fail("-addr, -dir and -expect are required")
	}

	bundlePem, err := ioutil.ReadFile(filepath.Join(*dir, "bundle.pem"))
	if err != nil {
		fail("reading bundle: %v", err)
	}
	bundle := x509.NewCertPool()
	if !bundle.AppendCertsFromPEM(bundlePem) {
		fail("bundle.pem holds no certificate")
	}

	config := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The standard verification would also match the host name, which a SPIFFE certificate need
		// not carry; it is switched off here only because VerifyPeerCertificate below redoes the
		// whole chain verification against the bundle and then checks the SPIFFE ID instead.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifySpiffeServer(bundle, *expect),
	}
	if !*noCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(*dir, "cert.pem"), filepath.Join(*dir, "key.pem"))
		if err != nil {
			fail("loading client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{cert}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for i := 1; i <= *count; i++ {
		callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := client.Check(callCtx, &healthpb.HealthCheckRequest{Service: *service})
		callCancel()
		if err != nil {
			fail("check %d: %v", i, err)
		}
		fmt.Printf("check %d %s\n", i, res.Status)
	}
}

// verifySpiffeServer verifies the chain against the bundle (server-auth usage) and requires the
// leaf to carry exactly one SPIFFE ID, equal to expected.
func verifySpiffeServer(bundle *x509.CertPool, expected string) func([][]byte, [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return errors.New("server presented no certificate")
		}
		certs := make([]*x509.Certificate, 0, len(rawCerts))
		for _, raw := range rawCerts {
			cert, err := x509.ParseCertificate(raw)
			if err != nil {
				return fmt.Errorf("server certificate does not parse: %v", err)
			}
			certs = append(certs, cert)
		}
		intermediates := x509.NewCertPool()
		for _, cert := range certs[1:] {
			intermediates.AddCert(cert)
		}
		leaf := certs[0]
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         bundle,
			Intermediates: intermediates,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return fmt.Errorf("server certificate does not verify: %v", err)
		}
		ids := []string{}
		for _, uri := range leaf.URIs {
			if uri.Scheme == "spiffe" {
				ids = append(ids, uri.String())
			}
		}
		if len(ids) != 1 || ids[0] != expected {
			return fmt.Errorf("server identity mismatch: expected %s, certificate has %v", expected, ids)
		}
		return nil
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "client: "+format+"\n", args...)
	os.Exit(1)
}
