// Command server is a grpc-go health server that requires mutual TLS, for interop tests with
// tlsmesh's grpc-js credentials.
//
// It reads cert.pem and key.pem from -dir on every handshake (so a rotation written by the agent or
// a test is used by the next connection without a restart) and trusts bundle.pem, read once at
// start, as the only client CAs. It prints "listening <addr>" once, then "peer <spiffe-id> <method>"
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

	bundlePem, err := ioutil.ReadFile(filepath.Join(*dir, "bundle.pem"))
	if err != nil {
		fail("reading bundle: %v", err)
	}
	bundle := x509.NewCertPool()
	if !bundle.AppendCertsFromPEM(bundlePem) {
		fail("bundle.pem holds no certificate")
	}

	config := &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  bundle,
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			// Read per handshake rather than once: that is how a Go service picks up the files the
			// tlsmesh agent rewrites, and what the rotation story for Go relies on.
			cert, err := tls.LoadX509KeyPair(filepath.Join(*dir, "cert.pem"), filepath.Join(*dir, "key.pem"))
			if err != nil {
				return nil, err
			}
			return &cert, nil
		},
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

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "server: "+format+"\n", args...)
	os.Exit(2)
}
