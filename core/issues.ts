/** A zod issue, or a validation error in that shape: where (a path of keys) and what is wrong. */
export interface Issue {
  path: readonly PropertyKey[];
  message: string;
}

/**
 * Validation issues as one line that names each field: "parts.0.coordinates.0: a ring ends where it
 * starts; reason: Too small". An issue at the root is named `root`.
 */
export function formatIssues(issues: readonly Issue[], root = '(root)', separator = '; '): string {
  return issues.map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`).join(separator);
}
