/** MercadoLibre records and the error envelope, shared by the fake's modules. */

export interface MLVariation {
  id: number;
  price: number;
  attribute_combinations: Array<{ id: string; name: string; value_id: string | null; value_name: string }>;
  available_quantity: number;
  sold_quantity: number;
  seller_custom_field: string | null;
}

export interface MLItem {
  id: string;
  site_id: string;
  title: string;
  seller_id: number;
  category_id: string;
  price: number;
  currency_id: string;
  available_quantity: number;
  sold_quantity: number;
  status: 'active' | 'paused' | 'closed';
  seller_custom_field: string | null;
  date_created: string;
  last_updated: string;
  variations: MLVariation[];
}

const ERROR_NAMES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  429: 'too_many_requests',
  500: 'internal_server_error',
  502: 'bad_gateway',
  503: 'service_unavailable',
};

/** ML's usual error envelope. */
export const mlError = (status: number, message: string, error = ERROR_NAMES[status] ?? 'error', cause: unknown[] = []) => ({ message, error, status, cause });
