import { checkWebhookUrl, checkedAddresses, isForbiddenAddress, type Resolve } from './address-policy';

describe('isForbiddenAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    'not-an-address',
  ])('refuses %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public %s',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(false);
    },
  );
});

const resolving =
  (answers: Record<string, string[]>): Resolve =>
  async (hostname) => {
    const addresses = answers[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('checkWebhookUrl', () => {
  const resolve = resolving({
    'hooks.example.com': ['93.184.215.14', '2606:4700::1111'],
    'rebind.example.com': ['93.184.215.14', '127.0.0.1'],
    'metadata.example.com': ['169.254.169.254'],
    'v6-private.example.com': ['fd00::5'],
  });
  const policy = { allowPrivate: false, resolve };

  it('accepts an http(s) URL whose host resolves only to public addresses', async () => {
    await expect(checkWebhookUrl('https://hooks.example.com/keyward', policy)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('http://93.184.215.14:8080/x', policy)).resolves.toBeInstanceOf(URL);
  });

  it.each([
    'https://rebind.example.com/',
    'https://metadata.example.com/latest',
    'https://v6-private.example.com/',
    'http://127.0.0.1:8080/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://10.0.0.8/',
    'https://nowhere.example.com/',
  ])('refuses %s with POLICY_VIOLATION on url', async (url) => {
    await expect(checkWebhookUrl(url, policy)).rejects.toMatchObject({
      code: 'POLICY_VIOLATION',
      rule: 'url',
    });
  });

  it.each([
    'ftp://hooks.example.com/',
    'file:///etc/passwd',
    'hooks.example.com/keyward',
    'https://user:pass@hooks.example.com/',
    'https://hooks.example.com/#frag',
    'javascript:alert(1)',
  ])('refuses the form of %s with VALIDATION_FAILED on url', async (url) => {
    await expect(checkWebhookUrl(url, policy)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [expect.objectContaining({ field: 'url' })],
    });
  });

  it('with private addresses allowed, checks the form only and resolves nothing', async () => {
    const never: Resolve = () => Promise.reject(new Error('must not resolve'));
    await expect(
      checkWebhookUrl('http://127.0.0.1:9/', { allowPrivate: true, resolve: never }),
    ).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('ftp://127.0.0.1/', { allowPrivate: true })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });
});

describe('checkedAddresses', () => {
  it('answers the resolved addresses when all are public', async () => {
    const resolve = resolving({ 'hooks.example.com': ['93.184.215.14'] });
    await expect(checkedAddresses('hooks.example.com', resolve)).resolves.toEqual([
      { address: '93.184.215.14', family: 4 },
    ]);
  });

  it('refuses a name that resolves to nothing', async () => {
    await expect(checkedAddresses('empty.example.com', async () => [])).rejects.toMatchObject({
      code: 'POLICY_VIOLATION',
    });
  });
});
