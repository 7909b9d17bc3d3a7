// Command server is a grpc-go health server that requires mutual TLS, for interop tests with
// tlsmesh's grpc-js credentials.
//
// It reads cert.pem, key.pem and bundle.pem from -dir on every handshake (so a renewal or a CA
// rotation written by the agent or a test is used by the next connection without a restart); the
// bundle is the only set of client CAs. It prints "listening <addr>" once, then "peer <spiffe-id> <method>"
// for every call, so a test can see which identity grpc-go authenticated.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

func main() {
	dir := flag.String("dir", "", "directory holding cert.pem, key.pem and bundle.pem")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if *dir == "" {
		fail("-dir is required")
	}

	// Everything is read per handshake rather than once: that is how a Go service picks up the
	// files the tlsmesh agent rewrites (a renewed leaf, and during a CA rotation a new bundle), and
	// what the rotation story for Go relies on. GetConfigForClient returns a whole config, so the
	// client CAs follow bundle.pem too, not only the server's own certificate.
	base := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	if _, err := loadConfig(*dir, base); err != nil {
		fail("%v", err)
	}
	config := base.Clone()
	config.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return loadConfig(*dir, base)
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen: %v", err)
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(config)), grpc.UnaryInterceptor(logPeer))
	healthpb.RegisterHealthServer(server, health.NewServer())
	fmt.Printf("listening %s\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		fail("serve: %v", err)
	}
}

// logPeer prints the caller's SPIFFE ID, taken from the verified client certificate.
func logPeer(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	fmt.Printf("peer %s %s\n", peerSpiffeID(ctx), info.FullMethod)
	return handler(ctx, req)
}

func peerSpiffeID(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "-"
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.PeerCertificates) == 0 {
		return "-"
	}
	ids := []string{}
	for _, uri := range tlsInfo.State.PeerCertificates[0].URIs {
		if uri.Scheme == "spiffe" {
			ids = append(ids, uri.String())
		}
	}
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ",")
}

// loadConfig reads cert.pem, key.pem and bundle.pem from dir into a copy of base.
func loadConfig(dir string, base *tls.Config) (*tls.Config, error) {
	bundlePem, err := ioutil.ReadFile(filepath.Join(dir, "bundle.pem"))
	if err != nil {
		return nil, fmt.Errorf("reading bundle: %v", err)
	}
	bundle := x509.NewCertPool()
	if !bundle.AppendCertsFromPEM(bundlePem) {
		return nil, fmt.Errorf("bundle.pem holds no certificate")
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, err
	}
	config := base.Clone()
	config.ClientCAs = bundle
	config.Certificates = []tls.Certificate{cert}
	return config, nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "server: "+format+"\n", args...)
	os.Exit(2)
}
