import type { Balance, ClientToken, ClientTokenRequest, ModelList } from '@contour/shared/contracts';
import type { RequestOptions, Transport } from '../http/transport.ts';

/** `POST /v1/client-tokens` input (defaults optional). */
export type ClientTokenCreateParams = Omit<ClientTokenRequest, 'expires_in' | 'max_generations'> &
  Partial<Pick<ClientTokenRequest, 'expires_in' | 'max_generations'>>;

/** `contour.billing`: the account's credits (secret keys with `billing:read`). */
export class Billing {
  constructor(private readonly transport: Transport) {}

  /** `GET /v1/balance`: available and reserved credits. */
  async balance(options: RequestOptions = {}): Promise<Balance> {
    return this.transport.json<Balance>({ method: 'GET', path: '/v1/balance' }, options);
  }
}

/** `contour.clientTokens`: short-lived browser credentials, minted with a secret key on your server. */
export class ClientTokens {
  constructor(private readonly transport: Transport) {}

  /** `POST /v1/client-tokens`: a `ct_...` token valid from one origin, with a spend and count limit. */
  async create(params: ClientTokenCreateParams, options: RequestOptions = {}): Promise<ClientToken> {
    return this.transport.json<ClientToken>(
      { method: 'POST', path: '/v1/client-tokens', body: params },
      options,
    );
  }
}

/** `contour.models`: what the deployment serves. */
export class Models {
  constructor(private readonly transport: Transport) {}

  /** `GET /v1/models`. */
  async list(options: RequestOptions = {}): Promise<ModelList> {
    return this.transport.json<ModelList>({ method: 'GET', path: '/v1/models' }, options);
  }
}
