// Helpers for Wharf's end-to-end tests: start Wharf or the reference registry (Distribution 2.8,
// Debian's `docker-registry`) on a free loopback port, run real clients (skopeo, podman, buildah,
// ctr, umoci), build test images, and talk raw HTTP to a registry. One import for the tests.
export * from './process.js';
export * from './servers.js';
export * from './images.js';
export * from './clients.js';
