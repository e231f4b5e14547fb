// The package version reported by GET /health and the OpenAPI document. Read once from
// package.json: this file runs as build/src/api/version.js, three levels below the package root.

import { readFileSync } from 'node:fs';

const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };

export const version = typeof packageJson.version === 'string' ? packageJson.version : '0.0.0';
