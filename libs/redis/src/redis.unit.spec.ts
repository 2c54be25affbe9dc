import { producerConnection } from './redis';

describe('producerConnection', () => {
  it('reads host, port, credentials, database and TLS from the URL', () => {
    expect(producerConnection('rediss://kw:s%40cret@cache.internal:6380/2')).toEqual(
      expect.objectContaining({
        host: 'cache.internal',
        port: 6380,
        username: 'kw',
        password: 's@cret',
        db: 2,
        tls: {},
        maxRetriesPerRequest: 1,
      }),
    );
  });

  it('defaults to port 6379, database 0, no TLS and no credentials', () => {
    expect(producerConnection('redis://127.0.0.1')).toEqual(
      expect.objectContaining({ host: '127.0.0.1', port: 6379, db: 0, tls: undefined, password: undefined }),
    );
  });
});
