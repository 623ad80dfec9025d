/*
 * Resolving credentials happens before any actor is known: the authenticator login may call just the two
 * security-definer functions that do it, in one round trip, without becoming the request role first.
 */
grant usage on schema app_hidden to fieldbase_authenticator;
grant execute on function app_hidden.session_by_token(text), app_hidden.authenticate_password(text, text)
  to fieldbase_authenticator;
