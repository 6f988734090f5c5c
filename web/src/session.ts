// What the views share with the shell (main.ts) without importing it, so
// that main.ts imports the views and nothing imports main.ts back.
import { ApiError, type TokenInfo } from "./tether";

/** The signed-in user: the token and what it says. */
export interface Session {
  token: string;
  info: TokenInfo;
  admin: boolean;
}

/** A view mounts into a container and returns its cleanup. */
export type View = (root: HTMLElement, s: Session, arg?: string) => () => void;

/** Asks the shell for a new token when e is a 401 from the REST API;
 * reports whether it was. */
export function unauthorized(e: unknown): boolean {
  if (e instanceof ApiError && e.status === 401) {
    window.dispatchEvent(new CustomEvent("tether:unauthorized"));
    return true;
  }
  return false;
}
