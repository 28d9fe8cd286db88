// The fixed ACPI power-management hardware the FADT describes and the port bus emulates:
// PM1a event and control blocks, the reset register, the SCI. Apart from the table builder
// (index.ts) because the vCPU threads need these numbers and nothing else of ACPI.

export const PM1A_EVT_PORT = 0x600;
export const PM1A_EVT_LEN = 4;
export const PM1A_CNT_PORT = 0x604;
export const PM1A_CNT_LEN = 2;
export const ACPI_S5_SLP_TYP = 5;
export const PM1_CNT_SCI_EN = 1 << 0;
export const PM1_CNT_SLP_EN = 1 << 13;
export const RESET_PORT = 0xcf9;
export const RESET_VALUE = 0x06;
export const SCI_IRQ = 9;

/** True when a 16-bit write `value` to PM1A_CNT_PORT asks for power-off (S5). */
export function isPowerOffWrite(value: number): boolean {
  return (value & PM1_CNT_SLP_EN) !== 0 && ((value >>> 10) & 7) === ACPI_S5_SLP_TYP;
}
