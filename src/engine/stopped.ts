/**
 * Both engines stop changing an image after a metadata write or a flush failed (the disk's state
 * is then only known to be a safe prefix of the intended order): later writes and flushes fail
 * with this error, reads go on, and reopening the image (which repairs it where needed) resumes.
 */
import { ioError, isQcow2Error, type Qcow2Error } from '../errors.js';

export function stoppedError(failure: Error): Qcow2Error {
  const why = isQcow2Error(failure) ? failure.message : String(failure);
  return ioError(`an earlier write to the image failed (${why}); no further changes are made until it is reopened`, {
    cause: failure,
    ...(isQcow2Error(failure) && failure.offset !== undefined ? { offset: failure.offset } : {}),
  });
}
