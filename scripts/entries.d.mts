export declare const root: string;
export declare function outName(key: string): string;
export declare function listPackages(): {
  dir: string;
  name: string;
  pkg: Record<string, unknown>;
  entries: Record<string, string>;
}[];
export declare function exportsFor(entries: Record<string, string>): Record<string, unknown>;
/** The dist/ files a package.json points at (exports, bin, main, module, types). */
export declare function targetsOf(pkg: Record<string, unknown>): string[];
