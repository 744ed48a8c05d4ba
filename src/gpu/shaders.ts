/**
 * WGSL lives in `shaders/*.wgsl`. How the text gets here depends on the host:
 * Vite bundles it for the browser (`shaders-vite.ts`), Node reads the files
 * (`shaders-node.ts`). Kernels receive a loader, never a global.
 */
export type ShaderLoader = (name: string) => string;

export function loaderFromRecord(files: Record<string, string>): ShaderLoader {
  return (name) => {
    const text = files[name];
    if (text === undefined) throw new Error(`unknown shader '${name}' (have: ${Object.keys(files).join(', ')})`);
    return text;
  };
}
