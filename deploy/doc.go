// Package deploy holds no code: it is where the deployment files are tested.
//
// k8s_test.go decodes every manifest of the kustomize base in deploy/k8s
// strictly into the k8s.io/api types and checks them against the binary's
// defaults. compose_test.go (GRPCPLAY_DOCKER_TESTS=1) builds the repository's
// Dockerfile on the local Docker engine and runs docker-compose.yml: health,
// the page, scaling the backend to three replicas, and stopping one under
// load. docs_test.go (GRPCPLAY_DOCKER_TESTS=1) runs the container blocks of
// the README and docs/ as written. Both build with the builder image that
// scripts/builder-image makes.
package deploy
