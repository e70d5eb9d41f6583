// SMART App Launch 2.2 scopes: parsing, and the check of a token's scopes against a
// FHIR interaction (S9, S16). Both v2 (`system/Appointment.rs`, `system/*.cruds`) and
// v1 (`system/Appointment.read`, `.write`, `.*`) syntaxes are understood.

// v1 -> v2 permission letters (S9: read -> rs, write -> cud, * -> cruds).
const V1 = { read: 'rs', write: 'cud', '*': 'cruds' };

const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]*)\.(\*|read|write|[cruds]+)(\?.*)?$/;

// Scopes that are not resource scopes but that SMART clients ask for.
const OTHER_SMART_SCOPES = new Set([
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'launch/encounter',
  'offline_access',
  'online_access',
]);

/**
 * Parses one resource scope. Returns undefined for a non-resource scope or a malformed one
 * (v2 letters must be an in-order subset of `cruds`, S9).
 */
export function parseResourceScope(scope) {
  const m = RESOURCE_SCOPE.exec(scope);
  if (!m) return undefined;
  const [, context, resourceType, permsRaw, query] = m;
  let perms;
  if (permsRaw in V1) {
    if (query) return undefined; // v1 scopes have no query part
    perms = V1[permsRaw];
  } else {
    if (!/^c?r?u?d?s?$/.test(permsRaw)) return undefined; // out of order, or repeated letters
    perms = permsRaw;
  }
  return { scope, context, resourceType, perms: new Set(perms), query: query ? query.slice(1) : undefined };
}

/** True for any syntactically valid SMART scope (used to teach oidc-provider about them). */
export function isSmartScope(scope) {
  return OTHER_SMART_SCOPES.has(scope) || parseResourceScope(scope) !== undefined;
}

/** Parses a space-separated scope string into resource grants. */
export function parseScopeString(scopeString) {
  return (scopeString ?? '')
    .split(' ')
    .filter(Boolean)
    .map(parseResourceScope)
    .filter(Boolean);
}

/**
 * Does one of the grants allow `letter` (c|r|u|d|s) on `resourceType`?
 * Notes (a harness, not a policy engine):
 * - patient/ and user/ scopes are checked at the resource-type level only; no compartment filtering.
 * - v2 query-restricted scopes (`system/Observation.rs?category=...`) are treated as unrestricted.
 */
export function allows(grants, resourceType, letter) {
  return grants.some(
    (g) => (g.resourceType === '*' || g.resourceType === resourceType) && g.perms.has(letter)
  );
}

/**
 * Maps a FhirRouter interaction to the permission letter it needs.
 * create -> c; read, vread, history-instance, operations on an instance -> r;
 * update, patch -> u; delete -> d; search-type -> s.
 */
export function letterFor(interaction, method) {
  switch (interaction) {
    case 'create':
      return 'c';
    case 'read':
    case 'vread':
    case 'history-instance':
      return 'r';
    case 'update':
    case 'patch':
      return 'u';
    case 'delete':
      return 'd';
    case 'search-type':
    case 'search-system':
      return 's';
    default:
      return method === 'GET' ? 'r' : 'u';
  }
}
