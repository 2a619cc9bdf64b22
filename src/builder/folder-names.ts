/**
 * How the folders a build makes are named, APP-BUILDID-XXXXXX (mkdtemp's six
 * characters): its temp folder under paths.workdir and its tree cache layers
 * under STATE/trees. The sweep tells from the name whose build made one.
 */
const BUILD_FOLDER = /-([0-9]+)-[A-Za-z0-9]{6}$/;

/** The prefix mkdtemp completes for a folder of build `buildId` of `app`. */
export const buildFolderPrefix = (app: string, buildId: number): string => `${app}-${buildId}-`;

/** The build a folder name belongs to, or null when it is no build's. */
export function buildOfFolder(name: string): number | null {
  const id = BUILD_FOLDER.exec(name)?.[1];
  return id === undefined ? null : Number(id);
}
