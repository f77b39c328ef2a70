export async function main(argv: string[]): Promise<number> {
  console.log('wharf', argv.join(' '));
  return 0;
}
