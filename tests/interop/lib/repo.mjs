// The FHIR store: @medplum/fhir-router's MemoryRepository, wrapped (composition, not
// inheritance) so the harness can
//   1. validate every write with @medplum/core's validateResource (MemoryRepository
//      itself accepts anything, e.g. {"resourceType":"Patient","foo":1});
//   2. keep its own version history: MemoryRepository.readHistory reverses its stored
//      version array in place (medplum 4.5.2), so the order flips on every call and
//      later versions get appended at the wrong end; it also forgets deletes;
//   3. answer 410 Gone for deleted resources (MemoryRepository says 404);
//   4. apply a default/maximum page size and fix multi-key _sort order;
//   5. tell the subscription engine about every create/update/delete.
// Search matching, sorting, conditional create/update/delete, If-Match checks and
// version ids are all still done by medplum.

import { randomUUID } from 'node:crypto';
import {
  DEFAULT_MAX_SEARCH_COUNT,
  DEFAULT_SEARCH_COUNT,
  OperationOutcomeError,
  badRequest,
  gone,
  normalizeOperationOutcome,
  notFound,
  validateResource,
} from '@medplum/core';
import { FhirRepository, MemoryRepository } from '@medplum/fhir-router';
import { applyPatch } from 'rfc6902';
import { deepClone } from './util.mjs';

export class HarnessRepository extends FhirRepository {
  #inner = new MemoryRepository();
  /** `${type}/${id}` -> [{ versionId, lastUpdated, method, resource | undefined (delete) }], oldest first */
  #versions = new Map();
  #deleted = new Set();
  #beforeWrite = [];
  #listeners = [];

  constructor() {
    super();
    /** Absolute FHIR base, set once the listener has its port (used for fullUrl). */
    this.baseUrl = '';
  }

  /**
   * fn(resource, interaction, previous) runs before validation on every write that is not
   * marked silent; it may change the resource or throw an OperationOutcomeError.
   */
  addBeforeWrite(fn) {
    this.#beforeWrite.push(fn);
  }

  /** fn({ interaction, resource, previous }) after each write that was not marked silent. */
  onChange(fn) {
    this.#listeners.push(fn);
  }

  clear() {
    this.#inner.clear();
    this.#versions.clear();
    this.#deleted.clear();
  }

  setMode() {
    // a single in-memory store has no reader/writer split
  }

  generateId() {
    return randomUUID();
  }

  // ---- writes -------------------------------------------------------------------

  async createResource(resource, options) {
    const input = deepClone(resource);
    if (!options?.assignedId) {
      delete input.id; // R4 create: the server assigns the id
    }
    stripServerMeta(input);
    this.#prepare(input, 'create', options);
    const created = await this.#inner.createResource(input);
    this.#record(created, 'POST', '201');
    this.#emit(options, { interaction: 'create', resource: created, previous: undefined });
    return created;
  }

  async updateResource(resource, options) {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
    const key = `${resource.resourceType}/${resource.id}`;
    const previous = this.#deleted.has(key)
      ? undefined
      : await this.#inner.readResource(resource.resourceType, resource.id).catch(() => undefined);
    if (options?.ifMatch && !previous) {
      throw new OperationOutcomeError(this.#deleted.has(key) ? gone : notFound);
    }
    const input = deepClone(resource);
    stripServerMeta(input);
    this.#prepare(input, previous ? 'update' : 'create', options, previous);
    // MemoryRepository checks If-Match against the stored versionId (412 on mismatch)
    const updated = await this.#inner.updateResource(input, { ifMatch: options?.ifMatch });
    this.#deleted.delete(key);
    this.#record(updated, 'PUT', previous ? '200' : '201');
    this.#emit(options, { interaction: previous ? 'update' : 'create', resource: updated, previous });
    return updated;
  }

  async patchResource(resourceType, id, patch) {
    const current = await this.readResource(resourceType, id);
    const errors = applyPatch(current, patch).filter(Boolean);
    if (errors.length > 0) {
      throw new OperationOutcomeError(badRequest(errors.map((e) => e.message).join('\n')));
    }
    return this.updateResource(current);
  }

  async deleteResource(resourceType, id, options) {
    const previous = await this.readResource(resourceType, id); // 404 / 410 when absent
    await this.#inner.deleteResource(resourceType, id);
    const key = `${resourceType}/${id}`;
    this.#deleted.add(key);
    this.#versions.get(key).push({
      versionId: randomUUID(),
      lastUpdated: new Date().toISOString(),
      method: 'DELETE',
      status: '204',
      resourceType,
      id,
      resource: undefined,
    });
    this.#emit(options, { interaction: 'delete', resource: previous, previous });
  }

  // ---- reads --------------------------------------------------------------------

  async readResource(resourceType, id) {
    if (this.#deleted.has(`${resourceType}/${id}`)) {
      throw new OperationOutcomeError(gone);
    }
    return this.#inner.readResource(resourceType, id);
  }

  async readReference(reference) {
    const parts = reference.reference?.split('/');
    if (parts?.length !== 2) {
      throw new OperationOutcomeError(badRequest('Invalid reference'));
    }
    return this.readResource(parts[0], parts[1]);
  }

  async readReferences(references) {
    return Promise.all(references.map((r) => this.readReference(r).catch((err) => err)));
  }

  /** Newest version first, deletes included (as entries with request.method DELETE and no resource). */
  async readHistory(resourceType, id, options) {
    const versions = this.#versions.get(`${resourceType}/${id}`);
    if (!versions) {
      throw new OperationOutcomeError(notFound);
    }
    let list = [...versions].reverse();
    const total = list.length;
    const offset = options?.offset ?? 0;
    const limit = Math.min(options?.limit ?? DEFAULT_SEARCH_COUNT, DEFAULT_MAX_SEARCH_COUNT);
    list = list.slice(offset, offset + limit);
    return {
      resourceType: 'Bundle',
      type: 'history',
      total,
      entry: list.map((v) => ({
        fullUrl: `${this.baseUrl}/${v.resourceType}/${v.id}`,
        ...(v.resource ? { resource: deepClone(v.resource) } : {}),
        request: {
          method: v.method,
          url: v.method === 'POST' ? v.resourceType : `${v.resourceType}/${v.id}`,
        },
        response: {
          status: v.status,
          etag: `W/"${v.versionId}"`,
          lastModified: v.lastUpdated,
        },
      })),
    };
  }

  async readVersion(resourceType, id, versionId) {
    const versions = this.#versions.get(`${resourceType}/${id}`);
    const version = versions?.find((v) => v.versionId === versionId);
    if (!version) {
      throw new OperationOutcomeError(notFound);
    }
    if (!version.resource) {
      throw new OperationOutcomeError(gone);
    }
    return deepClone(version.resource);
  }

  /**
   * Search: matching, sorting and slicing are MemoryRepository's (@medplum/core's
   * matchesSearchRequest). Added here: default page size 20 and maximum 1000 (what
   * the medplum server uses), a fix for multi-key _sort (MemoryRepository sorts by each
   * key in turn with a stable sort, so the LAST key ends up primary: we hand it the keys
   * reversed), and fullUrl/search.mode on each entry. Paging links are added by the HTTP
   * layer, which knows the request URL.
   */
  async search(searchRequest) {
    const request = { ...searchRequest };
    request.count = Math.min(request.count ?? DEFAULT_SEARCH_COUNT, DEFAULT_MAX_SEARCH_COUNT);
    if (request.sortRules?.length > 1) {
      request.sortRules = [...request.sortRules].reverse();
    }
    const bundle = await this.#inner.search(request);
    for (const entry of bundle.entry ?? []) {
      entry.fullUrl = `${this.baseUrl}/${entry.resource.resourceType}/${entry.resource.id}`;
      entry.search = { mode: 'match' };
    }
    return bundle;
  }

  async searchByReference(searchRequest, referenceField, references) {
    return this.#inner.searchByReference(searchRequest, referenceField, references);
  }

  async withTransaction(callback) {
    return callback(undefined);
  }

  /** Every stored resource of a type (no paging); for the harness's own use. */
  async all(resourceType) {
    const bundle = await this.#inner.search({ resourceType });
    return (bundle.entry ?? []).map((e) => e.resource);
  }

  // ---- internals ----------------------------------------------------------------

  #prepare(resource, interaction, options, previous) {
    if (!options?.silent) {
      for (const fn of this.#beforeWrite) {
        fn(resource, interaction, previous);
      }
    }
    try {
      validateResource(resource); // throws OperationOutcomeError listing every issue
    } catch (err) {
      throw new OperationOutcomeError(normalizeOperationOutcome(err));
    }
  }

  #record(resource, method, status) {
    const key = `${resource.resourceType}/${resource.id}`;
    let versions = this.#versions.get(key);
    if (!versions) {
      versions = [];
      this.#versions.set(key, versions);
    }
    versions.push({
      versionId: resource.meta.versionId,
      lastUpdated: resource.meta.lastUpdated,
      method,
      status,
      resourceType: resource.resourceType,
      id: resource.id,
      resource: deepClone(resource),
    });
  }

  #emit(options, event) {
    if (options?.silent) return;
    for (const fn of this.#listeners) {
      fn({ ...event, resource: deepClone(event.resource), previous: deepClone(event.previous) });
    }
  }
}

/** The server owns meta.versionId and meta.lastUpdated; never keep a client's values. */
function stripServerMeta(resource) {
  if (resource.meta) {
    delete resource.meta.versionId;
    delete resource.meta.lastUpdated;
    if (Object.keys(resource.meta).length === 0) delete resource.meta;
  }
}
